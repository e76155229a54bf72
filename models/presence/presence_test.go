package presence_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/cache"
	"github.com/agentroster/agentroster/models/presence"
	"github.com/agentroster/agentroster/models/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// setup returns a database with agents a0 … a(n-1) approved and "pending"
// pending, in the bootstrap org.
func setup(t *testing.T, n int) (*bun.DB, uuid.UUID) {
	t.Helper()
	db := testdb.New(t)
	org := testdb.Org(t, db)
	for i := range n {
		testdb.Agent(t, db, org, fmt.Sprintf("a%d", i), false)
	}
	testdb.Agent(t, db, org, "pending", true)
	return db, org
}

// start runs w until the test ends.
func start(t *testing.T, w *presence.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// TestSetPresenceFromConcurrentRequests: changes asked for at once commit
// (in shared batches) with one audit row per flip; a pending agent is
// refused, an unknown one is not found, a repeated change writes nothing.
func TestSetPresenceFromConcurrentRequests(t *testing.T) {
	const n = 20
	db, org := setup(t, n)
	w := presence.New(db, cache.New(time.Minute, "test", 100))
	start(t, w)
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			a, err := w.SetPresence(ctx, org, fmt.Sprintf("a%d", i), true, models.System)
			if err != nil || !a.IsOnline {
				t.Errorf("a%d online: %v %v", i, a, err)
			}
		})
	}
	wg.Go(func() {
		var se *models.StateError
		if _, err := w.SetPresence(ctx, org, "pending", true, models.System); !errors.As(err, &se) || se.Code != "agent_not_approved" {
			t.Errorf("pending online: %v, want agent_not_approved", err)
		}
	})
	wg.Go(func() {
		if _, err := w.SetPresence(ctx, org, "nobody", false, models.System); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("unknown agent: %v, want ErrNotFound", err)
		}
	})
	wg.Wait()
	if _, err := w.SetPresence(ctx, org, "a0", true, models.System); err != nil { // already online: nothing written
		t.Fatal(err)
	}
	count, err := db.NewSelect().Table("audit_events").Where("action = 'agent.online'").Count(ctx)
	if err != nil || count != n {
		t.Fatalf("%d agent.online audit rows (%v), want %d", count, err, n)
	}
}

// TestWriterFlushesContactsAndRefusesOnceStopped: a recorded contact is
// written by Flush (and by the writer as it stops), and a change asked for
// after it stopped is refused rather than left waiting.
func TestWriterFlushesContactsAndRefusesOnceStopped(t *testing.T) {
	db, org := setup(t, 1)
	ctx := t.Context()
	w := presence.New(db, cache.New(time.Minute, "test", 100))
	stop := start(t, w)
	a, err := models.GetAgent(ctx, db, org, "a0")
	if err != nil || a.LastSeenAt != nil {
		t.Fatalf("a0 before any contact: %v %v", a, err)
	}
	w.Touch(a)
	stop()
	if got, err := models.GetAgent(ctx, db, org, "a0"); err != nil || got.LastSeenAt == nil {
		t.Fatalf("contact not written when the writer stopped: %v %v", got, err)
	}
	if _, err := w.SetPresence(ctx, org, "a0", true, models.System); err == nil {
		t.Fatal("a change after the writer stopped was accepted")
	}
}
