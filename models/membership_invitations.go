package models

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// MembershipInvitation is an existing user's pending (or decided) invitation
// to become a member of an org: adding their email creates it, and they are
// a member only once they accept.
type MembershipInvitation struct {
	bun.BaseModel `bun:"table:membership_invitations"`

	ID        uuid.UUID  `bun:",pk,type:uuid,default:gen_random_uuid()"`
	OrgID     uuid.UUID  `bun:"org_id,type:uuid"`
	UserID    uuid.UUID  `bun:"user_id,type:uuid"`
	Role      string     `bun:"role"`
	InvitedBy *uuid.UUID `bun:"invited_by,type:uuid"`
	Status    string     `bun:",nullzero,default:'pending'"`
	CreatedAt time.Time  `bun:",nullzero,default:now()"`
	DecidedAt *time.Time `bun:"decided_at"`
}

// PendingMember is a pending invitation as the org's member list shows it:
// the email and role only, nothing about the user's account.
type PendingMember struct {
	ID        uuid.UUID `json:"invitationId"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	InvitedAt time.Time `json:"invitedAt"`
}

// ListPendingMembers returns the pending invitations of org by email.
func ListPendingMembers(ctx context.Context, db bun.IDB, org uuid.UUID) ([]PendingMember, error) {
	out := []PendingMember{}
	err := db.NewRaw(`SELECT i.id, u.email, i.role, i.created_at AS invited_at FROM membership_invitations AS i
		JOIN users AS u ON u.id = i.user_id WHERE i.org_id = ? AND i.status = 'pending' ORDER BY u.email`, org).Scan(ctx, &out)
	return out, translate(err, "list pending members")
}

// Invitation is a pending invitation as its invitee sees it.
type Invitation struct {
	ID        uuid.UUID `json:"id"`
	OrgID     uuid.UUID `json:"orgId"`
	OrgTitle  string    `json:"orgTitle"`
	Role      string    `json:"role"`
	InvitedBy string    `json:"invitedBy"`
	InvitedAt time.Time `json:"invitedAt"`
}

const invitationQuery = `SELECT i.id, i.org_id, o.title, i.role, coalesce(b.email, ''), i.created_at
	FROM membership_invitations AS i JOIN organizations AS o ON o.id = i.org_id
	LEFT JOIN users AS b ON b.id = i.invited_by
	WHERE i.user_id = ? AND i.status = 'pending'`

// ListInvitations returns user's pending invitations, oldest first.
func ListInvitations(ctx context.Context, db bun.IDB, user uuid.UUID) ([]Invitation, error) {
	rows, err := db.QueryContext(ctx, invitationQuery+" ORDER BY i.created_at, i.id", user)
	if err != nil {
		return nil, translate(err, "list invitations")
	}
	defer rows.Close()
	out := []Invitation{}
	for rows.Next() {
		var v Invitation
		if err := rows.Scan(&v.ID, &v.OrgID, &v.OrgTitle, &v.Role, &v.InvitedBy, &v.InvitedAt); err != nil {
			return nil, translate(err, "scan invitation")
		}
		out = append(out, v)
	}
	return out, translate(rows.Err(), "list invitations")
}

// CountInvitations returns how many invitations await user's decision.
func CountInvitations(ctx context.Context, db bun.IDB, user uuid.UUID) (int, error) {
	n, err := db.NewSelect().Model((*MembershipInvitation)(nil)).Where("user_id = ? AND status = 'pending'", user).Count(ctx)
	return int(n), translate(err, "count invitations")
}

// DecideInvitation accepts (the user becomes a member with the invited role)
// or declines user's pending invitation id. An invitation that is not
// user's, or no longer pending, is ErrNotFound.
func DecideInvitation(ctx context.Context, db bun.IDB, user, id uuid.UUID, accept bool, by Actor) (*Invitation, error) {
	status, action := "declined", "member.invitation_declined"
	if accept {
		status, action = "accepted", "member.invitation_accepted"
	}
	var inv Invitation
	err := InTx(ctx, db, func(tx bun.Tx) error {
		err := tx.QueryRowContext(ctx, invitationQuery+" AND i.id = ?", user, id).
			Scan(&inv.ID, &inv.OrgID, &inv.OrgTitle, &inv.Role, &inv.InvitedBy, &inv.InvitedAt)
		if err != nil {
			return translate(err, "find invitation")
		}
		if err := lockOrg(ctx, tx, inv.OrgID); err != nil {
			return err
		}
		res, err := tx.NewUpdate().Model((*MembershipInvitation)(nil)).Set("status = ?", status).Set("decided_at = now()").
			Where("id = ? AND user_id = ? AND status = 'pending'", id, user).Exec(ctx)
		if err != nil {
			return translate(err, "decide invitation")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if accept {
			_, err := tx.NewInsert().Model(&Membership{OrgID: inv.OrgID, UserID: user, Role: inv.Role}).On("CONFLICT DO NOTHING").Exec(ctx)
			if err != nil {
				return translate(err, "add member")
			}
		}
		return Audit(ctx, tx, inv.OrgID, by, action, "user", user.String(), map[string]any{"role": inv.Role, "invitationId": id})
	})
	if err != nil {
		return nil, err
	}
	return &inv, nil
}

// WithdrawInvitation withdraws org's pending invitation id (an admin changed
// their mind). One that is not org's, or no longer pending, is ErrNotFound.
func WithdrawInvitation(ctx context.Context, db bun.IDB, org, id uuid.UUID, by Actor) error {
	return InTx(ctx, db, func(tx bun.Tx) error {
		var user uuid.UUID
		err := tx.NewUpdate().Model((*MembershipInvitation)(nil)).Set("status = 'withdrawn'").Set("decided_at = now()").
			Where("id = ? AND org_id = ? AND status = 'pending'", id, org).Returning("user_id").Scan(ctx, &user)
		if err != nil {
			return translate(err, "withdraw invitation")
		}
		return Audit(ctx, tx, org, by, "member.invitation_withdrawn", "user", user.String(), map[string]any{"invitationId": id})
	})
}
