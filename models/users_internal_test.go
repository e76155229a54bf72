package models

import (
	"context"
	"errors"
	"runtime"
	"sync"
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

// TestPasswordChecksReuseTheirMemory checks 40 sign-ins from 8 goroutines at
// once: argon2id needs 12 MiB per computation, and fresh memory for each
// would leave 480 MiB of garbage behind; reused buffers (one per hash slot)
// allocate only what the slots hold.
func TestPasswordChecksReuseTheirMemory(t *testing.T) {
	hash := HashPassword("a good password")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if !CheckPassword(context.Background(), hash, "a good password") {
					t.Error("the right password was refused")
				}
			}
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	if limit := uint64(cap(hashSlots)+1) * argonMemory * 1024; allocated > limit {
		t.Fatalf("40 password checks allocated %d MiB, want at most %d MiB (a buffer per hash slot)", allocated>>20, limit>>20)
	}
	t.Logf("40 password checks allocated %.1f MiB", float64(allocated)/(1<<20))
}
