package models

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
)

// Organization is a tenant.
type Organization struct {
	bun.BaseModel `bun:"table:organizations"`

	ID        uuid.UUID `bun:",pk,type:uuid,default:gen_random_uuid()" json:"id"`
	Title     string    `json:"title"`
	Color     string    `json:"color"`
	CreatedAt time.Time `bun:",nullzero,default:now()" json:"createdAt"`
}

// Team groups agents and keys inside an org.
type Team struct {
	bun.BaseModel `bun:"table:teams"`

	ID         uuid.UUID `bun:",pk,type:uuid,default:gen_random_uuid()" json:"id"`
	OrgID      uuid.UUID `bun:"org_id,type:uuid" json:"orgId"`
	Name       string    `json:"name"`
	Onboarding string    `json:"onboarding"`
	CreatedAt  time.Time `bun:",nullzero,default:now()" json:"createdAt"`
}

// DefaultColumns are the board columns every new org starts with.
var DefaultColumns = []BoardColumn{
	{ID: "col_backlog", Name: "Backlog", Position: 1, AgentCanRead: true},
	{ID: "col_in_progress", Name: "In progress", Position: 2, AgentCanRead: true},
	{ID: "col_in_review", Name: "In review", Position: 3},
	{ID: "col_done", Name: "Done", Position: 4},
}

var colorRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// DefaultColor is an org's colour when none is given.
const DefaultColor = "#6366f1"

func cleanText(s string) string { return strings.TrimSpace(s) }

// validText checks a required single-line text field.
func validText(v *Validator, field, s string, max int) {
	v.Check(s != "", field, "is required")
	v.Check(utf8.RuneCountInString(s) <= max, field, "is too long")
	v.Check(utf8.ValidString(s) && !strings.ContainsAny(s, "\x00\r\n"), field, "must be one line of text")
}

// CreateOrg creates an org with a `default` team and the default board columns,
// and makes creator (when not nil) its admin.
func CreateOrg(ctx context.Context, db bun.IDB, title, color string, creator *uuid.UUID, by Actor) (*Organization, error) {
	title, color = cleanText(title), cleanText(color)
	if color == "" {
		color = DefaultColor
	}
	var v Validator
	validText(&v, "title", title, 200)
	v.Check(colorRE.MatchString(color), "color", "must be a hex colour like #22c55e")
	if err := v.Err(); err != nil {
		return nil, err
	}
	org := &Organization{Title: title, Color: strings.ToLower(color)}
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(org).Returning("*").Exec(ctx); err != nil {
			return orgWriteErr(err, title, "create org")
		}
		team := &Team{OrgID: org.ID, Name: "default"}
		if _, err := tx.NewInsert().Model(team).Exec(ctx); err != nil {
			return translate(err, "create default team")
		}
		cols := make([]BoardColumn, len(DefaultColumns))
		copy(cols, DefaultColumns)
		for i := range cols {
			cols[i].OrgID = org.ID
		}
		if _, err := tx.NewInsert().Model(&cols).Exec(ctx); err != nil {
			return translate(err, "create default columns")
		}
		if creator != nil {
			if _, err := tx.NewInsert().Model(&Membership{OrgID: org.ID, UserID: *creator, Role: RoleAdmin}).Exec(ctx); err != nil {
				return translate(err, "add creator")
			}
		}
		return Audit(ctx, tx, org.ID, by, "org.created", "org", org.ID.String(), map[string]any{"title": org.Title})
	})
	if err != nil {
		return nil, err
	}
	return org, nil
}

// orgTitleKey is the unique index on lower(btrim(title)): no two orgs share a
// title, compared trimmed and without regard to case.
const orgTitleKey = "organizations_title_key"

// orgWriteErr maps a write of org title's unique index violation to a 409
// org_exists, other errors as translate does.
func orgWriteErr(err error, title, what string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == orgTitleKey {
		return Conflict("org_exists", "an organization with that title already exists", map[string]any{"title": title})
	}
	return translate(err, what)
}

// GetOrg returns an org by id, or ErrNotFound.
func GetOrg(ctx context.Context, db bun.IDB, id uuid.UUID) (*Organization, error) {
	org := new(Organization)
	err := db.NewSelect().Model(org).Where("id = ?", id).Scan(ctx)
	return org, translate(err, "get org")
}

// ListOrgs returns every org (for platform admins), by title.
func ListOrgs(ctx context.Context, db bun.IDB) ([]Organization, error) {
	var orgs []Organization
	err := db.NewSelect().Model(&orgs).OrderExpr("title, id").Scan(ctx)
	return orgs, translate(err, "list orgs")
}

// ListUserOrgs returns the orgs a user is a member of, by title.
func ListUserOrgs(ctx context.Context, db bun.IDB, user uuid.UUID) ([]Organization, error) {
	var orgs []Organization
	err := db.NewSelect().Model(&orgs).
		Where("id IN (SELECT org_id FROM memberships WHERE user_id = ?)", user).
		OrderExpr("title, id").Scan(ctx)
	return orgs, translate(err, "list user orgs")
}

// CountOrgs returns how many orgs exist.
func CountOrgs(ctx context.Context, db bun.IDB) (int, error) {
	n, err := db.NewSelect().Model((*Organization)(nil)).Count(ctx)
	return int(n), translate(err, "count orgs")
}

// CreateTeam adds a team to an org. A duplicate name is ErrConflict.
func CreateTeam(ctx context.Context, db bun.IDB, org uuid.UUID, name string, by Actor) (*Team, error) {
	name = cleanText(name)
	var v Validator
	validText(&v, "name", name, 100)
	if err := v.Err(); err != nil {
		return nil, err
	}
	team := &Team{OrgID: org, Name: name}
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(team).Returning("*").Exec(ctx); err != nil {
			return translate(err, "create team")
		}
		return Audit(ctx, tx, org, by, "team.created", "team", team.ID.String(), map[string]any{"name": name})
	})
	if err != nil {
		return nil, err
	}
	return team, nil
}

// MaxOnboardingBytes bounds a team's onboarding document.
const MaxOnboardingBytes = 32 << 10

// UpdateTeam renames a team and replaces its onboarding document.
// It returns ErrNotFound when the team is not in org, ErrConflict on a duplicate name.
func UpdateTeam(ctx context.Context, db bun.IDB, org, id uuid.UUID, name, onboarding string, by Actor) (*Team, error) {
	name = cleanText(name)
	var v Validator
	validText(&v, "name", name, 100)
	v.Check(len(onboarding) <= MaxOnboardingBytes, "onboarding", "is longer than 32 KiB")
	v.Check(utf8.ValidString(onboarding) && !strings.ContainsRune(onboarding, 0), "onboarding", "must be UTF-8 text")
	if err := v.Err(); err != nil {
		return nil, err
	}
	team := new(Team)
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		err := tx.NewUpdate().Model(team).
			Set("name = ?", name).Set("onboarding = ?", onboarding).
			Where("org_id = ? AND id = ?", org, id).Returning("*").Scan(ctx)
		if err != nil {
			return translate(err, "update team")
		}
		return Audit(ctx, tx, org, by, "team.updated", "team", id.String(), map[string]any{"name": name})
	})
	if err != nil {
		return nil, err
	}
	return team, nil
}

// GetTeam returns a team of org, or ErrNotFound.
func GetTeam(ctx context.Context, db bun.IDB, org, id uuid.UUID) (*Team, error) {
	team := new(Team)
	err := db.NewSelect().Model(team).Where("org_id = ? AND id = ?", org, id).Scan(ctx)
	return team, translate(err, "get team")
}

// ListTeams returns an org's teams by name.
func ListTeams(ctx context.Context, db bun.IDB, org uuid.UUID) ([]Team, error) {
	var teams []Team
	err := db.NewSelect().Model(&teams).Where("org_id = ?", org).OrderExpr("name").Scan(ctx)
	return teams, translate(err, "list teams")
}

// DefaultTeam returns the org's `default` team (or its oldest team).
func DefaultTeam(ctx context.Context, db bun.IDB, org uuid.UUID) (*Team, error) {
	team := new(Team)
	err := defaultTeam(db.NewSelect().Model(team), org).Scan(ctx)
	return team, translate(err, "default team")
}

// defaultTeam narrows a select of teams to org's default team.
func defaultTeam(q *bun.SelectQuery, org uuid.UUID) *bun.SelectQuery {
	return q.Where("org_id = ?", org).OrderExpr("name = 'default' DESC, created_at").Limit(1)
}
