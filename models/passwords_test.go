package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/testdb"
)

// within runs f and fails the test when it has not returned after a generous
// bound: f is expected to answer without waiting for a hash slot.
func within[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s waited for a password hash slot", what)
	}
	var zero T
	return zero
}

// TestSetPasswordChecksTheTokenBeforeHashing holds every hash slot, so any
// argon2 computation blocks: unknown, used and expired tokens must still be
// answered (404, 410) at once, and a real token's hash gives up at the
// request's deadline without using the token up.
func TestSetPasswordChecksTheTokenBeforeHashing(t *testing.T) {
	db := testdb.New(t)
	ctx := t.Context()
	u, err := models.CreateUser(ctx, db, "new@example.com", "", false, models.System)
	if err != nil {
		t.Fatal(err)
	}
	live, used, expired := models.RandomBase62(43), models.RandomBase62(43), models.RandomBase62(43)
	for tok, sql := range map[string]string{
		live:    "INSERT INTO password_tokens (token_hash, user_id, expires_at) VALUES (?, ?, now() + interval '1 hour')",
		used:    "INSERT INTO password_tokens (token_hash, user_id, expires_at, used_at) VALUES (?, ?, now() + interval '1 hour', now())",
		expired: "INSERT INTO password_tokens (token_hash, user_id, expires_at) VALUES (?, ?, now() - interval '1 second')",
	} {
		if _, err := db.ExecContext(ctx, sql, models.Hash(tok), u.ID); err != nil {
			t.Fatal(err)
		}
	}

	models.HoldHashSlots(t)
	set := func(ctx context.Context, tok string) error {
		_, err := models.SetPasswordWithToken(ctx, db, tok, "a good new password", models.System)
		return err
	}
	for name, tc := range map[string]struct {
		tok  string
		want error
	}{
		"unknown token": {models.RandomBase62(43), models.ErrNotFound},
		"used token":    {used, models.ErrGone},
		"expired token": {expired, models.ErrGone},
	} {
		if err := within(t, name, func() error { return set(ctx, tc.tok) }); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// A bad token with a too-short password is still a bad token.
	if err := within(t, "unknown token, short password", func() error {
		_, err := models.SetPasswordWithToken(ctx, db, models.RandomBase62(43), "short", models.System)
		return err
	}); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("unknown token with a short password: %v, want not found", err)
	}

	// The live token needs a hash: its wait ends at the deadline.
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := within(t, "live token past its deadline", func() error { return set(dctx, live) }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("live token while every slot is busy: %v, want the deadline", err)
	}
	if _, err := models.PasswordTokenEmail(ctx, db, live); err != nil {
		t.Fatalf("a set-password that gave up used the token: %v", err)
	}
}

// TestChangePasswordGivesUpAtTheDeadline: with every hash slot taken, a
// password change ends at its deadline with the deadline (503), not with
// "not your current password".
func TestChangePasswordGivesUpAtTheDeadline(t *testing.T) {
	db := testdb.New(t)
	ctx := t.Context()
	u, err := models.CreateUser(ctx, db, "someone@example.com", "correct horse battery", false, models.System)
	if err != nil {
		t.Fatal(err)
	}
	models.HoldHashSlots(t)
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = within(t, "password change", func() error {
		_, err := models.ChangePassword(dctx, db, u.ID, "correct horse battery", "another good password", nil, models.System)
		return err
	})
	var ve *models.ValidationError
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ve) {
		t.Fatalf("password change past its deadline: %v, want the deadline", err)
	}
	// CreateUser with a password waits the same way.
	dctx2, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if err := within(t, "create user", func() error {
		_, err := models.CreateUser(dctx2, db, "other@example.com", "correct horse battery", false, models.System)
		return err
	}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("create user past its deadline: %v, want the deadline", err)
	}
}

// TestSignInGivesUpAtTheDeadline: with every hash slot taken, sign-ins for a
// known and an unknown email end at their deadline with the deadline (503),
// not "wrong password".
func TestSignInGivesUpAtTheDeadline(t *testing.T) {
	db := testdb.New(t)
	if _, err := models.CreateUser(t.Context(), db, "known@example.com", "correct horse battery", false, models.System); err != nil {
		t.Fatal(err)
	}
	models.HoldHashSlots(t)
	for _, email := range []string{"known@example.com", "unknown@example.com"} {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		err := within(t, "sign-in of "+email, func() error {
			_, err := models.Authenticate(ctx, db, email, "correct horse battery", models.System)
			return err
		})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("sign-in of %s past its deadline: %v, want the deadline", email, err)
		}
	}
}
