// Package live carries live updates between the server processes sharing a
// database: the broker LISTENs for the events changes publish, keeps the
// runtime cache coherent with them and fans them out to this process's
// Server-Sent Event streams; the announcer sends the events that only refresh
// pages once the requests that made them are done. Both run in the
// background, started by cmd/server; the handlers serve the streams.
package live

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/agentroster/agentroster/models"
	"github.com/agentroster/agentroster/models/cache"
)

// Broker fans out the events of models.EventChannel, received with LISTEN on
// one dedicated connection, to the streams of this process by org, and
// applies them to the cache.
type Broker struct {
	log    *slog.Logger
	url    string
	mu     sync.Mutex
	subs   map[uuid.UUID]map[*Stream]struct{}
	perKey map[string]int // open streams per session
	ready  chan struct{}  // closed once the first LISTEN succeeded
	cache  *cache.Cache   // live only while LISTEN is connected
	// reconnecting is set once the first LISTEN succeeded (Run's goroutine only).
	reconnecting bool
}

// Stream is one open live-update stream: whose it is, the events of its org,
// and closed when their access to its org ends.
type Stream struct {
	user    string // user id
	session string // models.SessionKey of its session; "" for a bearer token
	events  chan models.Event
	ended   chan struct{}
	once    sync.Once
	close   func()
}

// Events are the events of the stream's org, in order; a stream whose buffer
// is full misses some (its next event or reconnect catches up).
func (s *Stream) Events() <-chan models.Event { return s.events }

// Ended is closed when the stream must end: its user was removed, disabled,
// changed password or signed out, it reached its maximum life, or the
// listener reconnected.
func (s *Stream) Ended() <-chan struct{} { return s.ended }

// Close unsubscribes the stream.
func (s *Stream) Close() { s.close() }

func (s *Stream) end() { s.once.Do(func() { close(s.ended) }) }

// MaxStreamsPerSession bounds the streams one session may hold open.
const MaxStreamsPerSession = 8

// streamMaxLife is how long a stream stays open before the browser must
// reconnect (and be authorized again); a quarter more at random spreads the
// reconnects out.
const streamMaxLife = 10 * time.Minute

// NewBroker returns a broker that listens on the database at url (a direct or
// session-pooled connection: LISTEN holds it) and invalidates c; call Run to
// start it. Without a url it never listens, and the cache stays off.
func NewBroker(log *slog.Logger, url string, c *cache.Cache) *Broker {
	return &Broker{log: log, url: url, cache: c, subs: map[uuid.UUID]map[*Stream]struct{}{}, perKey: map[string]int{}, ready: make(chan struct{})}
}

// Ready is closed once the broker listens for the first time.
func (b *Broker) Ready() <-chan struct{} { return b.ready }

// Run listens until ctx ends, reconnecting with capped, jittered backoff.
func (b *Broker) Run(ctx context.Context) {
	if b.url == "" {
		return
	}
	backoff := 100 * time.Millisecond
	var once sync.Once
	for ctx.Err() == nil {
		err := b.listen(ctx, func() {
			backoff = 100 * time.Millisecond
			once.Do(func() { close(b.ready) })
		})
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("live updates: listener lost, reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff/2)))):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (b *Broker) listen(ctx context.Context, connected func()) error {
	conn, err := pgx.Connect(ctx, b.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+models.EventChannel); err != nil {
		return err
	}
	// Events missed while disconnected are unknown: start the cache afresh,
	// and keep nothing while the connection is down. An access_ended may have
	// been missed too: every open stream ends, and its browser reconnects and
	// is authorized again.
	b.cache.SetLive(true)
	defer b.cache.SetLive(false)
	if b.reconnecting {
		b.endAll()
	}
	b.reconnecting = true
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var ev models.Event
		if err := json.Unmarshal([]byte(n.Payload), &ev); err != nil {
			continue
		}
		b.cache.Apply(ev)
		b.deliver(ev)
	}
}

// deliver hands ev to each subscriber of its org without blocking: a stream
// whose buffer is full misses it (its next event or reconnect catches up).
func (b *Broker) deliver(ev models.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ev.Kind == models.EventAccessEnded {
		b.endStreams(ev)
		return
	}
	for s := range b.subs[ev.Org] {
		select {
		case s.events <- ev:
		default:
		}
	}
}

// endAll ends every open stream.
func (b *Broker) endAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, subs := range b.subs {
		for s := range subs {
			s.end()
		}
	}
}

// endStreams ends the streams whose access ev says ended: the user's, only
// those of ev.Org when set (a removal), only ev.Session's when set (a
// sign-out). The caller holds b.mu.
func (b *Broker) endStreams(ev models.Event) {
	for org, subs := range b.subs {
		if ev.Org != uuid.Nil && org != ev.Org {
			continue
		}
		for s := range subs {
			if s.user == ev.User && (ev.Session == "" || s.session == ev.Session) {
				s.end()
			}
		}
	}
}

// Subscribe opens a stream of user for org under key (the session, or the
// user for a bearer token; session is its models.SessionKey or ""), refusing
// more than MaxStreamsPerSession at once (false). Close it when done.
func (b *Broker) Subscribe(org uuid.UUID, user, session, key string) (*Stream, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.perKey[key] >= MaxStreamsPerSession {
		return nil, false
	}
	b.perKey[key]++
	if b.subs[org] == nil {
		b.subs[org] = map[*Stream]struct{}{}
	}
	s := &Stream{user: user, session: session, events: make(chan models.Event, 32), ended: make(chan struct{})}
	b.subs[org][s] = struct{}{}
	// A stream lives at most streamMaxLife: the browser reconnects and is
	// authorized again, so an expired session or bearer token, or an
	// access_ended missed while the listener was down, ends it in time.
	life := time.AfterFunc(streamMaxLife+time.Duration(rand.Int64N(int64(streamMaxLife/4))), s.end)
	s.close = func() {
		life.Stop()
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs[org], s)
		if len(b.subs[org]) == 0 {
			delete(b.subs, org)
		}
		if b.perKey[key]--; b.perKey[key] <= 0 {
			delete(b.perKey, key)
		}
	}
	return s, true
}

// Streams returns how many streams are open.
func (b *Broker) Streams() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, s := range b.subs {
		n += len(s)
	}
	return n
}
