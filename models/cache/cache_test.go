package cache_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/cache"
	"github.com/agentroster/agentroster/models/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// boundAgent registers agent id, approved, with a key bound to it (as a
// claimed invite would issue it), and returns the key's plaintext.
func boundAgent(t *testing.T, db bun.IDB, org uuid.UUID, id string) string {
	t.Helper()
	a := testdb.Agent(t, db, org, id, false)
	raw := models.NewAPIKey()
	k := &models.APIKey{OrgID: org, TeamID: a.TeamID, AgentID: &id, Name: "bound", Prefix: raw[:12], KeyHash: models.Hash(raw), IsActive: true}
	if _, err := db.NewInsert().Model(k).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestCacheStoresOnlyWhatItCanTrust checks the rules that keep cached keys and
// agents from outliving a change: nothing is kept while not listening, an
// event drops the agent and the keys bound to it, and a read that raced with
// an invalidation is not stored.
func TestCacheStoresOnlyWhatItCanTrust(t *testing.T) {
	ctx := t.Context()
	db := testdb.New(t)
	org := testdb.Org(t, db)
	type agent struct{ ID, Key string }
	a := agent{"load-0", boundAgent(t, db, org, "load-0")}
	c := cache.New(time.Minute, "test", 100)

	// Not listening: every read goes to the database.
	if _, err := c.Key(ctx, db, a.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Agent(ctx, db, org, a.ID); err != nil {
		t.Fatal(err)
	}
	if k, n := c.Len(); k+n != 0 {
		t.Fatalf("stored %d keys and %d agents while not listening", k, n)
	}

	c.SetLive(true)
	k, err := c.Key(ctx, db, a.Key)
	if err != nil {
		t.Fatal(err)
	}
	c.Agent(ctx, db, org, a.ID)
	if k, n := c.Len(); k != 1 || n != 1 {
		t.Fatalf("cached %d keys and %d agents, want 1 and 1", k, n)
	}

	// Revoked in the database: the cached copy serves until the event arrives.
	if _, err := models.RevokeAPIKey(ctx, db, org, k.ID, models.System); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Key(ctx, db, a.Key); err != nil {
		t.Fatalf("before the event: %v", err)
	}
	c.Apply(models.Event{Org: org, Kind: models.EventAPIKey, ID: k.ID.String()})
	if _, err := c.Key(ctx, db, a.Key); !errors.Is(err, models.ErrUnauthorized) {
		t.Fatalf("after the event: %v, want ErrUnauthorized", err)
	}

	// An agent event drops the agent and its bound keys.
	b := agent{"load-1", boundAgent(t, db, org, "load-1")}
	c.Key(ctx, db, b.Key)
	c.Agent(ctx, db, org, b.ID)
	c.Apply(models.Event{Org: org, Kind: models.EventAgentList, ID: b.ID})
	if k, n := c.Len(); k != 0 || n != 1 {
		t.Fatalf("after deleting %s: %d keys and %d agents cached, want 0 and 1 (%s)", b.ID, k, n, a.ID)
	}

	// A read that began before an invalidation of its agent is not stored.
	gen, started := c.Begin()
	stale, err := models.GetAgent(ctx, db, org, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	c.Forget(models.Event{Org: org, Kind: models.EventAgent, ID: b.ID})
	c.Put(stale, gen, started)
	if _, n := c.Len(); n != 1 {
		t.Fatalf("a read that raced with an invalidation was stored")
	}

	// Events this process published about its own presence writes are skipped;
	// others' are not.
	c.Apply(models.Event{Org: org, Kind: models.EventAgent, ID: a.ID, Origin: "test"})
	if _, n := c.Len(); n != 1 {
		t.Fatalf("own presence event dropped the agent")
	}
	c.Apply(models.Event{Org: org, Kind: models.EventAgent, ID: a.ID, Origin: "other"})
	if _, n := c.Len(); n != 0 {
		t.Fatalf("another replica's event did not drop the agent")
	}

	// Losing the listener empties the cache.
	c.Agent(ctx, db, org, a.ID)
	c.SetLive(false)
	if k, n := c.Len(); k+n != 0 {
		t.Fatalf("%d keys and %d agents left after the listener was lost", k, n)
	}
}
