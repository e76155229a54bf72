package live

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/cache"
	"github.com/agentroster/agentroster/models/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func newTestBroker(url string) *Broker {
	return NewBroker(slog.New(slog.NewTextHandler(io.Discard, nil)), url, cache.New(time.Minute, "test", 100))
}

// ended reports whether s has been told to end.
func ended(s *Stream) bool {
	select {
	case <-s.Ended():
		return true
	default:
		return false
	}
}

// TestSubscribeBoundsStreamsPerKey: a session holds at most
// MaxStreamsPerSession streams; closing one frees its place, and other
// sessions have their own allowance.
func TestSubscribeBoundsStreamsPerKey(t *testing.T) {
	b := newTestBroker("")
	org := uuid.New()
	var open []*Stream
	for range MaxStreamsPerSession {
		s, ok := b.Subscribe(org, "u", "s1", "s1")
		if !ok {
			t.Fatalf("stream %d refused", len(open)+1)
		}
		open = append(open, s)
	}
	if _, ok := b.Subscribe(org, "u", "s1", "s1"); ok {
		t.Fatal("a stream over the bound was accepted")
	}
	if _, ok := b.Subscribe(org, "u", "s2", "s2"); !ok {
		t.Fatal("another session's stream was refused")
	}
	if n := b.Streams(); n != MaxStreamsPerSession+1 {
		t.Fatalf("%d streams open, want %d", n, MaxStreamsPerSession+1)
	}
	open[0].Close()
	if _, ok := b.Subscribe(org, "u", "s1", "s1"); !ok {
		t.Fatal("a closed stream did not free its place")
	}
}

// TestDeliverByOrgAndEndAccess: an event reaches the streams of its org
// only; an access_ended event ends the streams it names (the user's in
// every org, in one org, or of one session) and no others.
func TestDeliverByOrgAndEndAccess(t *testing.T) {
	b := newTestBroker("")
	orgA, orgB := uuid.New(), uuid.New()
	a1, _ := b.Subscribe(orgA, "u1", "sess1", "sess1")
	a2, _ := b.Subscribe(orgA, "u1", "sess2", "sess2")
	b1, _ := b.Subscribe(orgB, "u1", "sess1", "sess1")
	other, _ := b.Subscribe(orgA, "u2", "sess3", "sess3")

	b.deliver(models.Event{Org: orgA, Kind: models.EventAgent, ID: "x"})
	for _, s := range []*Stream{a1, a2, other} {
		if ev := <-s.Events(); ev.ID != "x" {
			t.Fatalf("got %+v", ev)
		}
	}
	if len(b1.Events()) != 0 {
		t.Fatal("another org's stream received the event")
	}

	b.deliver(models.Event{Kind: models.EventAccessEnded, User: "u1", Session: "sess2"}) // a sign-out
	if !ended(a2) || ended(a1) || ended(b1) || ended(other) {
		t.Fatal("a sign-out ended the wrong streams")
	}
	b.deliver(models.Event{Org: orgB, Kind: models.EventAccessEnded, User: "u1"}) // removed from orgB
	if !ended(b1) || ended(a1) || ended(other) {
		t.Fatal("a removal ended the wrong streams")
	}
	b.deliver(models.Event{Kind: models.EventAccessEnded, User: "u1"}) // disabled
	if !ended(a1) || ended(other) {
		t.Fatal("disabling a user ended the wrong streams")
	}
}

// TestRunListensAnnouncesAndInvalidates runs the broker and the announcer on
// a real database: the cache is live while the broker listens, events
// published in a transaction and announced after one reach the streams of
// their org, and each is applied to the cache.
func TestRunListensAnnouncesAndInvalidates(t *testing.T) {
	_, url := testdb.Fresh(t)
	db, err := models.Open(url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := newTestBroker(url)
	a := NewAnnouncer(db)
	ctx := t.Context()
	done := make(chan struct{}, 2)
	go func() { b.Run(ctx); done <- struct{}{} }()
	go func() { a.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { <-done; <-done })
	<-b.Ready()

	org := uuid.New()
	s, _ := b.Subscribe(org, "u", "", "u")
	defer s.Close()
	// A cached agent the event names is dropped.
	gen, started := b.cache.Begin()
	b.cache.Put(&models.Agent{OrgID: org, ID: "x"}, gen, started)
	if _, n := b.cache.Len(); n != 1 {
		t.Fatal("the cache stores nothing while the broker listens")
	}
	if err := models.Publish(ctx, db, models.Event{Org: org, Kind: models.EventAgent, ID: "x"}); err != nil {
		t.Fatal(err)
	}
	a.Announce(models.Event{Org: org, Kind: models.EventJoinRequest})
	for _, want := range []string{models.EventAgent, models.EventJoinRequest} {
		select {
		case ev := <-s.Events():
			if ev.Kind != want {
				t.Fatalf("got %+v, want kind %s", ev, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event within 5 s", want)
		}
	}
	if _, n := b.cache.Len(); n != 0 {
		t.Fatal("the agent event did not reach the cache")
	}
}
