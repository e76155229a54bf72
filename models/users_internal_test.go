package models

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPasswordHashesWaitForASlot checks that password checks beyond the
// number of cores wait rather than each taking argon2's memory at once, and
// that a sign-in whose deadline passes while waiting is not told its
// password was wrong.
func TestPasswordHashesWaitForASlot(t *testing.T) {
	hash := HashPassword("correct horse battery")
	for range cap(hashSlots) {
		hashSlots <- struct{}{} // every slot busy
	}
	held := cap(hashSlots)
	t.Cleanup(func() {
		for range held {
			<-hashSlots
		}
	})
	done := make(chan bool)
	go func() { done <- CheckPassword(t.Context(), hash, "correct horse battery") }()
	select {
	case <-done:
		t.Fatal("a password check ran while every hash slot was taken")
	case <-time.After(300 * time.Millisecond):
	}

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	<-ctx.Done()
	if CheckPassword(ctx, hash, "correct horse battery") {
		t.Fatal("a check whose deadline passed before a slot freed said yes")
	}
	if err := refused(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sign-in refused after its deadline: %v, want the deadline (503), not a wrong password", err)
	}

	<-hashSlots // one slot frees
	held--
	if ok := <-done; !ok {
		t.Fatal("the right password was refused once a slot freed")
	}
}
