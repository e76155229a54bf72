package models

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Member is a user's membership in an org as the Members screen shows it.
type Member struct {
	UserID      uuid.UUID  `json:"userId"`
	Email       string     `json:"email"`
	Role        string     `json:"role"`
	IsSA        bool       `json:"isSa"`
	HasPassword bool       `json:"hasPassword"`
	LastLoginAt *time.Time `json:"lastLoginAt"`
	DisabledAt  *time.Time `json:"disabledAt"`
	AddedAt     time.Time  `json:"addedAt"`
	// CreatedHere: the org created this user by adding their email, so its
	// admins may re-send their set-password link while they have none.
	CreatedHere bool `json:"-"`
}

// CanResendLink reports whether the org's admins may re-issue the member's
// set-password link (see ResendPasswordLink).
func (m *Member) CanResendLink() bool {
	return m.CreatedHere && !m.HasPassword && !m.IsSA && m.DisabledAt == nil
}

// State is how the member shows in lists: active, invited (no password yet) or disabled.
func (m *Member) State() string {
	switch {
	case m.DisabledAt != nil:
		return "disabled"
	case !m.HasPassword:
		return "invited"
	}
	return "active"
}

// SetPasswordTTL is how long a set-password link works.
const SetPasswordTTL = 24 * time.Hour

// ValidRole reports whether role is admin or viewer.
func ValidRole(role string) bool { return role == RoleAdmin || role == RoleViewer }

func checkRole(role string) error {
	if !ValidRole(role) {
		return Invalid("role", "must be admin or viewer")
	}
	return nil
}

const memberColumns = `u.id, u.email, m.role, u.is_sa, u.password_hash <> '', u.last_login_at, u.disabled_at, m.created_at,
	coalesce(u.created_by_org_id = m.org_id, false)`

func scanMember(rows interface{ Scan(...any) error }, m *Member) error {
	return rows.Scan(&m.UserID, &m.Email, &m.Role, &m.IsSA, &m.HasPassword, &m.LastLoginAt, &m.DisabledAt, &m.AddedAt, &m.CreatedHere)
}

// ListMembers returns the members of org by email.
func ListMembers(ctx context.Context, db bun.IDB, org uuid.UUID) ([]Member, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+memberColumns+`
		FROM memberships AS m JOIN users AS u ON u.id = m.user_id
		WHERE m.org_id = ? ORDER BY u.email`, org)
	if err != nil {
		return nil, translate(err, "list members")
	}
	defer rows.Close()
	out := []Member{}
	for rows.Next() {
		var m Member
		if err := scanMember(rows, &m); err != nil {
			return nil, translate(err, "scan member")
		}
		out = append(out, m)
	}
	return out, translate(rows.Err(), "list members")
}

// GetMember returns one member of org, or ErrNotFound.
func GetMember(ctx context.Context, db bun.IDB, org, user uuid.UUID) (*Member, error) {
	var m Member
	err := scanMember(db.QueryRowContext(ctx, `SELECT `+memberColumns+`
		FROM memberships AS m JOIN users AS u ON u.id = m.user_id
		WHERE m.org_id = ? AND m.user_id = ?`, org, user), &m)
	if err != nil {
		return nil, translate(err, "get member")
	}
	return &m, nil
}

// lockOrg serialises membership changes of one org, so two admins demoting
// each other at the same moment cannot leave it without an admin.
func lockOrg(ctx context.Context, tx bun.IDB, org uuid.UUID) error {
	var id uuid.UUID
	err := tx.NewRaw("SELECT id FROM organizations WHERE id = ? FOR UPDATE", org).Scan(ctx, &id)
	return translate(err, "lock org")
}

// otherAdmins counts the admins of org other than user.
func otherAdmins(ctx context.Context, tx bun.IDB, org, user uuid.UUID) (int, error) {
	n, err := tx.NewSelect().Model((*Membership)(nil)).
		Where("org_id = ? AND role = ? AND user_id <> ?", org, RoleAdmin, user).Count(ctx)
	return int(n), translate(err, "count admins")
}

var errLastAdmin = Conflict("last_admin", "an organization needs at least one admin: make someone else admin first", nil)

// AddResult is the answer to adding an email to an org. It has the same
// fields whether or not the email belonged to a user: Token is set only when
// the call created the user (the one time a link is handed out).
type AddResult struct {
	Email  string
	Role   string
	Status string // always "invited"
	Token  string
}

// AddMemberByEmail adds the email to org with role without touching anything
// of an existing user's credentials. An unknown email creates the user (bound
// to org: created_by_org_id) as a member without a password, and returns a
// one-time set-password token (valid SetPasswordTTL, stored hashed) to hand
// over. An existing user gets a pending membership invitation instead and is
// not a member until they accept it. A member is a 409 already_member, a
// pending invitation a 409 already_invited.
func AddMemberByEmail(ctx context.Context, db bun.IDB, org uuid.UUID, email, role string, by Actor) (*AddResult, error) {
	email, err := NormalizeEmail(email)
	var v Validator
	if err != nil {
		v.Check(false, "email", "must be an email address like name@example.com")
	}
	v.Check(ValidRole(role), "role", "must be admin or viewer")
	if err := v.Err(); err != nil {
		return nil, err
	}
	res := &AddResult{Email: email, Role: role, Status: "invited"}
	err = InTx(ctx, db, func(tx bun.Tx) error {
		if err := lockOrg(ctx, tx, org); err != nil {
			return err
		}
		var user uuid.UUID
		err := tx.NewSelect().Model((*User)(nil)).Column("id").Where("email = ?", email).Scan(ctx, &user)
		if errors.Is(err, sql.ErrNoRows) {
			res.Token, err = createInvitedUser(ctx, tx, org, email, role, by)
			return err
		}
		if err != nil {
			return translate(err, "find user")
		}
		if r, err := UserRole(ctx, tx, user, org); err != nil {
			return err
		} else if r != "" {
			return Conflict("already_member", "this user is already a member of the organization", map[string]any{"email": email})
		}
		_, err = tx.NewInsert().Model(&MembershipInvitation{OrgID: org, UserID: user, Role: role, InvitedBy: by.UserID()}).Exec(ctx)
		if err = translate(err, "invite member"); errors.Is(err, ErrConflict) {
			return Conflict("already_invited", "this email already has a pending invitation to the organization", map[string]any{"email": email})
		} else if err != nil {
			return err
		}
		return Audit(ctx, tx, org, by, "member.invited", "user", user.String(), map[string]any{"email": email, "role": role})
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// createInvitedUser creates a user without a password as a member of org (the
// org that created them) and returns their first set-password token.
func createInvitedUser(ctx context.Context, tx bun.IDB, org uuid.UUID, email, role string, by Actor) (string, error) {
	u := &User{Email: email, CreatedByOrgID: &org}
	if _, err := tx.NewInsert().Model(u).Returning("*").Exec(ctx); err != nil {
		return "", translate(err, "create user")
	}
	if err := Audit(ctx, tx, uuid.Nil, by, "user.created", "user", u.ID.String(), map[string]any{"email": email, "isSa": false, "createdByOrgId": org}); err != nil {
		return "", err
	}
	if _, err := tx.NewInsert().Model(&Membership{OrgID: org, UserID: u.ID, Role: role}).Exec(ctx); err != nil {
		return "", translate(err, "add member")
	}
	if err := Audit(ctx, tx, org, by, "member.added", "user", u.ID.String(), map[string]any{"email": email, "role": role, "setPasswordLink": true}); err != nil {
		return "", err
	}
	token, err := issuePasswordToken(ctx, tx, u.ID, &org, by)
	if err != nil {
		return "", err
	}
	return token, Audit(ctx, tx, org, by, "user.password_link_issued", "user", u.ID.String(), map[string]any{"email": email, "reason": "created"})
}

// issuePasswordToken creates a set-password token for user, issued for org
// (nil: a platform admin's reset); earlier unused tokens of that user stop
// working. Callers decide who may: only the call that created the user, the
// org that created them while they have no password, or a platform admin.
func issuePasswordToken(ctx context.Context, tx bun.IDB, user uuid.UUID, org *uuid.UUID, by Actor) (string, error) {
	if _, err := tx.NewRaw("UPDATE password_tokens SET used_at = now() WHERE user_id = ? AND used_at IS NULL", user).Exec(ctx); err != nil {
		return "", translate(err, "supersede password tokens")
	}
	token := RandomBase62(43)
	_, err := tx.NewRaw("INSERT INTO password_tokens (token_hash, user_id, created_by, expires_at, org_id) VALUES (?, ?, ?, ?, ?)",
		Hash(token), user, by.UserID(), time.Now().Add(SetPasswordTTL), org).Exec(ctx)
	return token, translate(err, "issue password token")
}

// ResendPasswordLink re-issues the set-password link of a user org created
// who has no password yet; the earlier link stops working. A user org did not
// create, or who is no longer its member, is ErrNotFound; one who has set a
// password, was disabled or became a platform admin is a 403 password_set.
func ResendPasswordLink(ctx context.Context, db bun.IDB, org, user uuid.UUID, by Actor) (token, email string, err error) {
	err = InTx(ctx, db, func(tx bun.Tx) error {
		var u User
		err := tx.NewRaw(`SELECT u.email, u.password_hash, u.is_sa, u.disabled_at FROM users AS u
			JOIN memberships AS m ON m.user_id = u.id AND m.org_id = ?
			WHERE u.id = ? AND u.created_by_org_id = ? FOR UPDATE OF u`, org, user, org).
			Scan(ctx, &u.Email, &u.PasswordHash, &u.IsSA, &u.DisabledAt)
		if err != nil {
			return translate(err, "find user")
		}
		if u.PasswordHash != "" || u.IsSA || u.DisabledAt != nil {
			return Forbidden("password_set", "this user has set a password (or is a platform admin or disabled): only a platform admin can reset it")
		}
		email = u.Email
		if token, err = issuePasswordToken(ctx, tx, user, &org, by); err != nil {
			return err
		}
		return Audit(ctx, tx, org, by, "user.password_link_issued", "user", user.String(), map[string]any{"email": email, "reason": "resend"})
	})
	return token, email, err
}

// ResetPasswordLink is a platform admin's explicit reset: it issues a new
// set-password link for user (earlier links stop working; the current
// password keeps working until the link is used). An unknown user is
// ErrNotFound.
func ResetPasswordLink(ctx context.Context, db bun.IDB, user uuid.UUID, by Actor) (token, email string, err error) {
	err = InTx(ctx, db, func(tx bun.Tx) error {
		err := tx.NewRaw("SELECT email FROM users WHERE id = ? FOR UPDATE", user).Scan(ctx, &email)
		if err != nil {
			return translate(err, "find user")
		}
		if token, err = issuePasswordToken(ctx, tx, user, nil, by); err != nil {
			return err
		}
		return Audit(ctx, tx, uuid.Nil, by, "user.password_link_issued", "user", user.String(), map[string]any{"email": email, "reason": "platform_reset"})
	})
	return token, email, err
}

// ChangeMemberRole sets a member's role. Demoting the last admin is a 409
// last_admin; an unknown member is ErrNotFound.
func ChangeMemberRole(ctx context.Context, db bun.IDB, org, user uuid.UUID, role string, by Actor) (*Member, error) {
	if err := checkRole(role); err != nil {
		return nil, err
	}
	var m *Member
	err := InTx(ctx, db, func(tx bun.Tx) error {
		if err := lockOrg(ctx, tx, org); err != nil {
			return err
		}
		var old string
		err := tx.NewSelect().Model((*Membership)(nil)).Column("role").
			Where("org_id = ? AND user_id = ?", org, user).Scan(ctx, &old)
		if err != nil {
			return translate(err, "member role")
		}
		if old == RoleAdmin && role != RoleAdmin {
			n, err := otherAdmins(ctx, tx, org, user)
			if err != nil {
				return err
			}
			if n == 0 {
				return errLastAdmin
			}
		}
		if old != role {
			_, err := tx.NewUpdate().Model((*Membership)(nil)).Set("role = ?", role).
				Where("org_id = ? AND user_id = ?", org, user).Exec(ctx)
			if err != nil {
				return translate(err, "change role")
			}
			if err := Audit(ctx, tx, org, by, "member.role_changed", "user", user.String(), map[string]any{"from": old, "to": role}); err != nil {
				return err
			}
		}
		m, err = GetMember(ctx, tx, org, user)
		return err
	})
	return m, err
}

// RemoveMember takes user out of org; their access to other orgs is untouched.
// Removing the last admin is a 409 last_admin; an unknown member is ErrNotFound.
func RemoveMember(ctx context.Context, db bun.IDB, org, user uuid.UUID, by Actor) error {
	return InTx(ctx, db, func(tx bun.Tx) error {
		if err := lockOrg(ctx, tx, org); err != nil {
			return err
		}
		var role string
		err := tx.NewDelete().Model((*Membership)(nil)).Where("org_id = ? AND user_id = ?", org, user).
			Returning("role").Scan(ctx, &role)
		if err != nil {
			return translate(err, "remove member")
		}
		if role == RoleAdmin {
			n, err := otherAdmins(ctx, tx, org, user)
			if err != nil {
				return err
			}
			if n == 0 {
				return errLastAdmin
			}
		}
		// The user's sessions and tokens live on: every request checks the
		// membership, and a session working in this org falls back to
		// another of the user's orgs. Their open event streams of this org
		// close (on every replica), and a set-password link this org issued
		// stops working.
		if _, err := tx.NewRaw("UPDATE password_tokens SET used_at = now() WHERE user_id = ? AND org_id = ? AND used_at IS NULL", user, org).Exec(ctx); err != nil {
			return translate(err, "end password links")
		}
		if err := Publish(ctx, tx, Event{Kind: EventAccessEnded, Org: org, User: user.String()}); err != nil {
			return err
		}
		return Audit(ctx, tx, org, by, "member.removed", "user", user.String(), map[string]any{"role": role})
	})
}

// tokenUserFit is the condition (on password_tokens t joined to users u) for
// a token to set a password besides being unused and unexpired: a platform
// admin's reset link (org_id NULL) fits any user; a link an org issued fits
// only while its user is an ordinary, enabled member of that org without a
// password. Its holder is that org's admin, who must not get an account that
// has since become a platform admin, been disabled, set its own password or
// left the org.
const tokenUserFit = `(t.org_id IS NULL OR (NOT u.is_sa AND u.password_hash = '' AND u.disabled_at IS NULL
	AND EXISTS (SELECT 1 FROM memberships AS m WHERE m.org_id = t.org_id AND m.user_id = t.user_id)))`

// voidOrgPasswordTokens ends every unused set-password link an org issued for
// user (on promotion to platform admin and on disable).
func voidOrgPasswordTokens(ctx context.Context, tx bun.IDB, user uuid.UUID) error {
	_, err := tx.NewRaw("UPDATE password_tokens SET used_at = now() WHERE user_id = ? AND org_id IS NOT NULL AND used_at IS NULL", user).Exec(ctx)
	return translate(err, "end org password links")
}

// PasswordTokenEmail returns the email of the user a live set-password token
// belongs to. An unknown token is ErrNotFound; a used or expired one, or an
// org's link whose user no longer fits it (see tokenUserFit), is a 410
// link_expired.
func PasswordTokenEmail(ctx context.Context, db bun.IDB, token string) (string, error) {
	if !IsBase62(token, 43) {
		return "", ErrNotFound
	}
	var email string
	var live bool
	err := db.QueryRowContext(ctx, `SELECT u.email, t.used_at IS NULL AND t.expires_at > now() AND `+tokenUserFit+`
		FROM password_tokens AS t JOIN users AS u ON u.id = t.user_id WHERE t.token_hash = ?`, Hash(token)).Scan(&email, &live)
	if err != nil {
		return "", translate(err, "find password token")
	}
	if !live {
		return "", errLinkExpired
	}
	return email, nil
}

var errLinkExpired = Gone("link_expired", "this link was already used or has expired: ask an admin for a new one")

// SetPasswordWithToken uses a set-password token once: the user gets password,
// every earlier session of theirs ends. A used or expired token, or an org's
// link whose user no longer fits it (checked in the same statement that uses
// the token, see tokenUserFit), is a 410 link_expired, an unknown one
// ErrNotFound; both are answered before any password hash is computed, so
// bogus tokens cost no argon2 time.
func SetPasswordWithToken(ctx context.Context, db bun.IDB, token, password string, by Actor) (*User, error) {
	if _, err := PasswordTokenEmail(ctx, db, token); err != nil {
		return nil, err
	}
	if err := ValidatePassword(password); err != nil {
		return nil, err
	}
	hash, err := hashPassword(ctx, password)
	if err != nil {
		return nil, err
	}
	u := new(User)
	err = InTx(ctx, db, func(tx bun.Tx) error {
		var user uuid.UUID
		err := tx.NewRaw(`UPDATE password_tokens AS t SET used_at = now() FROM users AS u
			WHERE t.token_hash = ? AND t.used_at IS NULL AND t.expires_at > now() AND u.id = t.user_id
			AND `+tokenUserFit+` RETURNING t.user_id`, Hash(token)).Scan(ctx, &user)
		if errors.Is(err, sql.ErrNoRows) {
			var n int
			if err := tx.NewRaw("SELECT count(*) FROM password_tokens WHERE token_hash = ?", Hash(token)).Scan(ctx, &n); err != nil {
				return translate(err, "find password token")
			}
			if n > 0 {
				return errLinkExpired
			}
			return ErrNotFound
		}
		if err != nil {
			return translate(err, "use password token")
		}
		if err := setPassword(ctx, tx, user, -1, hash, nil, u); err != nil {
			return err
		}
		by.Type, by.ID, by.Label = "user", u.ID.String(), u.Email
		return Audit(ctx, tx, uuid.Nil, by, "user.password_set", "user", user.String(), nil)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// setPassword stores a new password hash and bumps the auth epoch, which ends
// every session and bearer token of the user; keep (a session id) survives.
// The user's open event streams close on every replica (keep's reconnects).
// With epoch >= 0 the write happens only while the user's auth epoch is still
// epoch (else ErrNotFound).
func setPassword(ctx context.Context, tx bun.IDB, user uuid.UUID, epoch int, hash string, keep []byte, u *User) error {
	uq := tx.NewUpdate().Model(u).Set("password_hash = ?", hash).Set("auth_epoch = auth_epoch + 1").
		Where("id = ?", user)
	if epoch >= 0 {
		uq.Where("auth_epoch = ?", epoch)
	}
	err := uq.Returning("*").Scan(ctx)
	if err != nil {
		return translate(err, "set password")
	}
	q := tx.NewDelete().Model((*Session)(nil)).Where("user_id = ?", user)
	if keep != nil {
		q.Where("id <> ?", keep)
		if _, err := tx.NewUpdate().Model((*Session)(nil)).Set("auth_epoch = ?", u.AuthEpoch).Where("id = ?", keep).Exec(ctx); err != nil {
			return translate(err, "keep session")
		}
	}
	if _, err = q.Exec(ctx); err != nil {
		return translate(err, "end sessions")
	}
	return Publish(ctx, tx, Event{Kind: EventAccessEnded, User: user.String()})
}

// ChangePassword replaces a user's password after checking the current one
// (a wrong one is a 400 on currentPassword). Every session of the user ends
// except keep (the caller's own session, or nil), and so does every bearer token.
func ChangePassword(ctx context.Context, db bun.IDB, user uuid.UUID, current, password string, keep []byte, by Actor) (*User, error) {
	u, err := GetUser(ctx, db, user)
	if err != nil {
		return nil, err
	}
	if u.PasswordHash == "" || !CheckPassword(ctx, u.PasswordHash, current) {
		if err := ctx.Err(); err != nil {
			return nil, err // no hash slot before the deadline: not a wrong password
		}
		return nil, Invalid("currentPassword", "is not your current password")
	}
	if err := ValidatePassword(password); err != nil {
		return nil, err
	}
	hash, err := hashPassword(ctx, password)
	if err != nil {
		return nil, err
	}
	err = InTx(ctx, db, func(tx bun.Tx) error {
		// Only if nobody changed it meanwhile: the epoch read above must
		// still hold when the row is written (one conditional UPDATE, so of
		// two changes racing, the second finds the epoch moved).
		err := setPassword(ctx, tx, user, u.AuthEpoch, hash, keep, u)
		if errors.Is(err, ErrNotFound) {
			return Conflict("password_changed", "the password was changed meanwhile; sign in again", nil)
		}
		if err != nil {
			return err
		}
		return Audit(ctx, tx, uuid.Nil, by, "user.password_changed", "user", user.String(), nil)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// ListUsers returns every user (for platform admins) by email, at most 1000.
func ListUsers(ctx context.Context, db bun.IDB) ([]User, error) {
	var users []User
	err := db.NewSelect().Model(&users).OrderExpr("email").Limit(1000).Scan(ctx)
	return users, translate(err, "list users")
}

var errLastSA = Conflict("last_platform_admin", "the platform needs at least one active platform admin", nil)

// lockPlatform serialises changes to who is a platform admin.
func lockPlatform(ctx context.Context, tx bun.IDB) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7204118306)")
	return translate(err, "lock platform")
}

func otherActiveSAs(ctx context.Context, tx bun.IDB, user uuid.UUID) (int, error) {
	n, err := tx.NewSelect().Model((*User)(nil)).Where("is_sa AND disabled_at IS NULL AND id <> ?", user).Count(ctx)
	return int(n), translate(err, "count platform admins")
}

// SetUserSA makes a user a platform admin or takes it away. Taking it from the
// last active platform admin is a 409 last_platform_admin.
func SetUserSA(ctx context.Context, db bun.IDB, user uuid.UUID, isSA bool, by Actor) (*User, error) {
	u := new(User)
	err := InTx(ctx, db, func(tx bun.Tx) error {
		if err := lockPlatform(ctx, tx); err != nil {
			return err
		}
		if !isSA {
			n, err := otherActiveSAs(ctx, tx, user)
			if err != nil {
				return err
			}
			if n == 0 {
				return errLastSA
			}
		}
		if isSA {
			// A link an org admin holds must not become a platform admin's
			// first credential.
			if err := voidOrgPasswordTokens(ctx, tx, user); err != nil {
				return err
			}
		}
		err := tx.NewUpdate().Model(u).Set("is_sa = ?", isSA).Where("id = ?", user).Returning("*").Scan(ctx)
		if err != nil {
			return translate(err, "set platform admin")
		}
		return Audit(ctx, tx, uuid.Nil, by, "user.platform_admin_changed", "user", user.String(), map[string]any{"isSa": isSA, "email": u.Email})
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// SetUserDisabled disables or re-enables a user. Disabling bumps the auth
// epoch and deletes the user's sessions, so their cookies and bearer tokens
// are refused on the next request. Disabling the last active platform admin
// is a 409 last_platform_admin. Asking for the current state changes nothing.
func SetUserDisabled(ctx context.Context, db bun.IDB, user uuid.UUID, disabled bool, by Actor) (*User, error) {
	u := new(User)
	err := InTx(ctx, db, func(tx bun.Tx) error {
		if err := lockPlatform(ctx, tx); err != nil {
			return err
		}
		q := tx.NewUpdate().Model(u).Where("id = ?", user).Returning("*")
		if disabled {
			n, err := otherActiveSAs(ctx, tx, user)
			if err != nil {
				return err
			}
			cur, err := GetUser(ctx, tx, user)
			if err != nil {
				return err
			}
			if cur.IsSA && n == 0 {
				return errLastSA
			}
			if err := voidOrgPasswordTokens(ctx, tx, user); err != nil {
				return err
			}
			q.Set("disabled_at = now()").Set("auth_epoch = auth_epoch + 1").Where("disabled_at IS NULL")
		} else {
			q.Set("disabled_at = NULL").Where("disabled_at IS NOT NULL")
		}
		err := q.Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			got, err := GetUser(ctx, tx, user)
			if err == nil {
				*u = *got
			}
			return err
		}
		if err != nil {
			return translate(err, "disable user")
		}
		action := "user.enabled"
		if disabled {
			action = "user.disabled"
			if _, err := tx.NewDelete().Model((*Session)(nil)).Where("user_id = ?", user).Exec(ctx); err != nil {
				return translate(err, "end sessions")
			}
			if err := Publish(ctx, tx, Event{Kind: EventAccessEnded, User: user.String()}); err != nil {
				return err
			}
		}
		return Audit(ctx, tx, uuid.Nil, by, action, "user", user.String(), map[string]any{"email": u.Email})
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateOrg renames an org and sets its colour.
func UpdateOrg(ctx context.Context, db bun.IDB, id uuid.UUID, title, color string, by Actor) (*Organization, error) {
	title, color = cleanText(title), cleanText(color)
	var v Validator
	validText(&v, "title", title, 200)
	v.Check(colorRE.MatchString(color), "color", "must be a hex colour like #22c55e")
	if err := v.Err(); err != nil {
		return nil, err
	}
	org := new(Organization)
	err := InTx(ctx, db, func(tx bun.Tx) error {
		err := tx.NewUpdate().Model(org).Set("title = ?", title).Set("color = lower(?)", color).
			Where("id = ?", id).Returning("*").Scan(ctx)
		if err != nil {
			return orgWriteErr(err, title, "update org")
		}
		return Audit(ctx, tx, id, by, "org.updated", "org", id.String(), map[string]any{"title": org.Title, "color": org.Color})
	})
	if err != nil {
		return nil, err
	}
	return org, nil
}
