package models

import (
	"context"
	"database/sql"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// OrgRole is an organization and a user's role in it ("" when the user is
// not a member).
type OrgRole struct {
	OrgID uuid.UUID
	Role  string
}

// RoleIn returns user's role in org ("" when not a member) in one statement;
// ErrNotFound when the org does not exist.
func RoleIn(ctx context.Context, db bun.IDB, user, org uuid.UUID) (string, error) {
	var role sql.NullString
	err := db.NewSelect().Model((*Organization)(nil)).
		ColumnExpr("(SELECT role FROM memberships AS m WHERE m.org_id = organization.id AND m.user_id = ?)", user).
		Where("organization.id = ?", org).Scan(ctx, &role)
	return role.String, translate(err, "role in org")
}

// APIKeyOrgRole returns the org of API key id and user's role there ("" when
// not a member), in one statement; ErrNotFound when there is no such key.
func APIKeyOrgRole(ctx context.Context, db bun.IDB, id, user uuid.UUID) (uuid.UUID, string, error) {
	return orgAndRole(ctx, db, (*APIKey)(nil), id, user, "get api key org")
}

// AgentOrgs returns the orgs holding an agent of that id with user's role in
// each: every such org when all is set (platform admins), else only the orgs
// user is a member of. Ordered by org title.
func AgentOrgs(ctx context.Context, db bun.IDB, id string, user uuid.UUID, all bool) ([]OrgRole, error) {
	var out []OrgRole
	rows, err := db.QueryContext(ctx, `SELECT a.org_id, coalesce(m.role, '')
		FROM agents AS a
		JOIN organizations AS o ON o.id = a.org_id
		LEFT JOIN memberships AS m ON m.org_id = a.org_id AND m.user_id = ?
		WHERE a.id = ? AND (? OR m.role IS NOT NULL)
		ORDER BY o.title, o.id`, user, id, all)
	if err != nil {
		return nil, translate(err, "agent orgs")
	}
	defer rows.Close()
	for rows.Next() {
		var r OrgRole
		if err := rows.Scan(&r.OrgID, &r.Role); err != nil {
			return nil, translate(err, "agent orgs")
		}
		out = append(out, r)
	}
	return out, translate(rows.Err(), "agent orgs")
}
