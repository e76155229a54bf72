package cache

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
)

// TestCacheMarksLiveOneToTwoWindows checks that an invalidation keeps a read
// that began before it from being stored for at least raceWindow, even across
// a rotation, and that marks older than two windows are dropped without
// scanning them.
func TestCacheMarksLiveOneToTwoWindows(t *testing.T) {
	c := New(time.Minute, "test", 100)
	c.SetLive(true)
	org := uuid.New()
	x, y := models.AgentRef{Org: org, ID: "x"}, models.AgentRef{Org: org, ID: "y"}

	gen, started := c.begin()
	c.Forget(models.Event{Org: org, Kind: models.EventAgent, ID: x.ID})

	// The window turns: x's mark moves to the older window and still counts.
	c.mu.Lock()
	c.rotatedAt = c.rotatedAt.Add(-raceWindow)
	c.mu.Unlock()
	c.Forget(models.Event{Org: org, Kind: models.EventAgent, ID: y.ID})
	c.mu.Lock()
	if c.storable(gen, started, uuid.Nil, &x) {
		t.Fatal("a read that began before x was invalidated may be stored after one rotation")
	}
	if !c.storable(c.gen, time.Now(), uuid.Nil, &x) {
		t.Fatal("a read that began after x was invalidated may not be stored")
	}
	c.mu.Unlock()

	// Another turn drops x's mark (y's moves to the older window).
	c.mu.Lock()
	c.rotatedAt = c.rotatedAt.Add(-raceWindow)
	c.mu.Unlock()
	c.Forget(models.Event{Org: org, Kind: models.EventAPIKey, ID: uuid.NewString()})
	c.mu.Lock()
	defer c.mu.Unlock()
	_, inCur := c.marks.agents[x]
	_, inOld := c.older.agents[x]
	_, yOld := c.older.agents[y]
	if inCur || inOld || !yOld {
		t.Fatalf("after two rotations: x kept (%v, %v), y in the older window %v; want x dropped, y kept", inCur, inOld, yOld)
	}
}

// TestCacheReconnectRefusesEarlierReads checks that a read which began
// before the listener reconnected is not stored: an event sent while the
// listener was down may concern it, and no mark records that event.
func TestCacheReconnectRefusesEarlierReads(t *testing.T) {
	c := New(time.Minute, "test", 100)
	c.SetLive(true)
	ref := models.AgentRef{Org: uuid.New(), ID: "x"}
	gen, started := c.begin()
	c.SetLive(false)
	c.SetLive(true)
	c.Put(&models.Agent{OrgID: ref.Org, ID: ref.ID}, gen, started)
	if _, n := c.Len(); n != 0 {
		t.Fatal("a read that began before the listener reconnected was stored")
	}
	gen, started = c.begin()
	c.Put(&models.Agent{OrgID: ref.Org, ID: ref.ID}, gen, started)
	if _, n := c.Len(); n != 1 {
		t.Fatal("a read that began after the reconnect was not stored")
	}
}
