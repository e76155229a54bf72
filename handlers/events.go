package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/agentroster/agentroster/models"
)

// broker fans out the events of models.EventChannel, received with LISTEN on
// one dedicated connection, to the SSE streams of this process by org.
type broker struct {
	log    *slog.Logger
	url    string
	mu     sync.Mutex
	subs   map[uuid.UUID]map[chan models.Event]*stream
	perKey map[string]int // open streams per session
	ready  chan struct{}  // closed once the first LISTEN succeeded
	cache  *models.Cache  // live only while LISTEN is connected
	// reconnecting is set once the first LISTEN succeeded (run's goroutine only).
	reconnecting bool
}

// stream is one open SSE stream: whose it is, and closed when their access
// to its org ends.
type stream struct {
	user    string // user id
	session string // models.SessionKey of its session; "" for a bearer token
	ended   chan struct{}
	once    sync.Once
}

func (s *stream) end() { s.once.Do(func() { close(s.ended) }) }

// maxStreamsPerSession bounds the SSE streams one session may hold open.
const maxStreamsPerSession = 8

// streamMaxLife is how long a stream stays open before the browser must
// reconnect (and be authorized again); a quarter more at random spreads the
// reconnects out.
const streamMaxLife = 10 * time.Minute

func newBroker(log *slog.Logger, url string, cache *models.Cache) *broker {
	return &broker{log: log, url: url, cache: cache, subs: map[uuid.UUID]map[chan models.Event]*stream{}, perKey: map[string]int{}, ready: make(chan struct{})}
}

// run listens until ctx ends, reconnecting with capped, jittered backoff.
func (b *broker) run(ctx context.Context) {
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

func (b *broker) listen(ctx context.Context, connected func()) error {
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
func (b *broker) deliver(ev models.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ev.Kind == models.EventAccessEnded {
		b.endStreams(ev)
		return
	}
	for ch := range b.subs[ev.Org] {
		select {
		case ch <- ev:
		default:
		}
	}
}

// endAll ends every open stream.
func (b *broker) endAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, subs := range b.subs {
		for _, s := range subs {
			s.end()
		}
	}
}

// endStreams ends the streams whose access ev says ended: the user's, only
// those of ev.Org when set (a removal), only ev.Session's when set (a
// sign-out). The caller holds b.mu.
func (b *broker) endStreams(ev models.Event) {
	for org, subs := range b.subs {
		if ev.Org != uuid.Nil && org != ev.Org {
			continue
		}
		for _, s := range subs {
			if s.user == ev.User && (ev.Session == "" || s.session == ev.Session) {
				s.end()
			}
		}
	}
}

// subscribe registers a stream of user for org under key (the session, or
// the user for a bearer token; session is its models.SessionKey or ""),
// refusing more than maxStreamsPerSession at once. The stream's ended
// channel closes when the user's access to org ends.
func (b *broker) subscribe(org uuid.UUID, user, session, key string) (chan models.Event, *stream, func(), bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.perKey[key] >= maxStreamsPerSession {
		return nil, nil, nil, false
	}
	b.perKey[key]++
	ch := make(chan models.Event, 32)
	if b.subs[org] == nil {
		b.subs[org] = map[chan models.Event]*stream{}
	}
	st := &stream{user: user, session: session, ended: make(chan struct{})}
	b.subs[org][ch] = st
	// A stream lives at most streamMaxLife: the browser reconnects and is
	// authorized again, so an expired session or bearer token, or an
	// access_ended missed while the listener was down, ends it in time.
	life := time.AfterFunc(streamMaxLife+time.Duration(rand.Int64N(int64(streamMaxLife/4))), st.end)
	return ch, st, func() {
		life.Stop()
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs[org], ch)
		if len(b.subs[org]) == 0 {
			delete(b.subs, org)
		}
		if b.perKey[key]--; b.perKey[key] <= 0 {
			delete(b.perKey, key)
		}
	}, true
}

// streams returns how many SSE streams are open.
func (b *broker) streams() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, s := range b.subs {
		n += len(s)
	}
	return n
}

// announceAfter collects the page-refresh events the request's changes
// publish and announces them once the handler is done, its transactions
// committed (see models.Publish). One rolled back is announced all the same:
// pages re-fetch and find nothing new.
func (h *Handler) announceAfter(c *gin.Context) {
	d := &models.Deferred{}
	c.Request = c.Request.WithContext(models.WithDeferredEvents(c.Request.Context(), d))
	c.Next()
	for _, ev := range d.Events() {
		h.announcer.Announce(ev)
	}
}

// sseHeartbeat keeps idle streams alive through proxies.
const sseHeartbeat = 25 * time.Second

// events streams the viewer's org's live updates as Server-Sent Events. Each
// event is named after what changed ("agent-<id>", "agents", "join_requests"),
// so an element can refresh itself with hx-trigger="sse:<name>".
func (h *Handler) events(c *gin.Context) {
	s := scopeOf(c)
	p := currentPrincipal(c)
	key, session := p.User.ID.String(), ""
	var sessionID []byte
	if p.Session != nil {
		sessionID = p.Session.ID
		session = models.SessionKey(sessionID)
		key = session
	}
	ch, st, unsubscribe, ok := h.broker.subscribe(s.OrgID, p.User.ID.String(), session, key)
	if !ok {
		h.fail(c, newErr(http.StatusTooManyRequests, "too_many_streams", "too many live update streams for this session"))
		return
	}
	// Access that ended between the checks above and subscribing was
	// announced before this stream listened: check once more now.
	if err := h.streamAllowed(c, s.OrgID, sessionID); err != nil {
		unsubscribe()
		h.fail(c, err)
		return
	}
	if h.detachStream(c, ch, st, unsubscribe) {
		return
	}
	defer unsubscribe()

	w := c.Writer
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(format string, args ...any) bool {
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// Browsers wait this long before reconnecting after a drop.
	if !send("retry: 2000\n: connected\n\n") {
		return
	}
	tick := time.NewTicker(sseHeartbeat)
	defer tick.Stop()
	for {
		select {
		case <-c.Request.Context().Done():
			return
		case <-h.ctx.Done():
			return // shutting down: end the stream so the drain completes
		case <-st.ended:
			return // removed, disabled, password changed or signed out
		case <-tick.C:
			if !send(": heartbeat\n\n") {
				return
			}
		case ev := <-ch:
			for _, name := range eventNames(ev) {
				if !send("event: %s\ndata: %s\n\n", name, ev.ID) {
					return
				}
			}
		}
	}
}

// detachStream takes the stream's connection from the HTTP server (HTTP/1.1
// only) and serves it from a goroutine of its own, and reports whether it
// did. A stream otherwise holds, for as long as it stays open, the request's
// goroutine with the stack of the whole middleware chain, net/http's
// background reader and the connection's buffers: about 30 KiB, where a
// detached stream holds two shallow goroutines (about 10 KiB). The response
// has no length and ends when the connection closes.
func (h *Handler) detachStream(c *gin.Context, ch chan models.Event, st *stream, unsubscribe func()) bool {
	hdr := c.Writer.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Set("Connection", "close")
	if c.Request.ProtoMajor != 1 {
		return false
	}
	conn, _, err := http.NewResponseController(c.Writer).Hijack()
	if err != nil {
		return false
	}
	conn.SetDeadline(time.Time{}) // the server's read and write timeouts are for requests
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	hdr.Write(&head)
	head.WriteString("\r\nretry: 2000\n: connected\n\n")
	h.streams.Add(1)
	go func() {
		defer h.streams.Done()
		defer unsubscribe()
		defer conn.Close()
		h.serveStream(conn, head.Bytes(), ch, st)
	}()
	return true
}

// serveStream writes a detached stream's events until the client leaves, its
// access ends or the server shuts down.
func (h *Handler) serveStream(conn net.Conn, head []byte, ch chan models.Event, st *stream) {
	send := func(b []byte) bool {
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := conn.Write(b)
		return err == nil
	}
	if !send(head) {
		return
	}
	// The client sends nothing more: a read returns only when it leaves.
	gone := make(chan struct{})
	go func() {
		var b [1]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				close(gone)
				return
			}
		}
	}()
	tick := time.NewTicker(sseHeartbeat)
	defer tick.Stop()
	for {
		select {
		case <-gone:
			return
		case <-h.ctx.Done():
			return // shutting down
		case <-st.ended:
			return // removed, disabled, password changed or signed out
		case <-tick.C:
			if !send([]byte(": heartbeat\n\n")) {
				return
			}
		case ev := <-ch:
			for _, name := range eventNames(ev) {
				if !send(fmt.Appendf(nil, "event: %s\ndata: %s\n\n", name, ev.ID)) {
					return
				}
			}
		}
	}
}

// streamAllowed checks, once a stream listens, that its user is still signed
// in (same auth epoch, not disabled, the session not ended) and still in org.
func (h *Handler) streamAllowed(c *gin.Context, org uuid.UUID, session []byte) error {
	p := currentPrincipal(c)
	ok, err := models.StillSignedIn(c.Request.Context(), h.db, p.User.ID, p.User.AuthEpoch, session)
	if err != nil {
		return err
	}
	if !ok {
		return errUnauthenticated
	}
	_, err = h.roleIn(c, p, org)
	return err
}

// eventNames maps a change to the SSE event names pages listen for.
func eventNames(ev models.Event) []string {
	switch ev.Kind {
	case "agent": // one agent changed: its roster row refreshes
		return []string{"agent-" + ev.ID}
	case "agent_list": // agents were added or removed: the roster refreshes
		return []string{"roster"}
	case "join_request":
		return []string{"join_requests"}
	case "invite":
		return []string{"invites"}
	}
	return []string{ev.Kind}
}
