package handlers

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/agentroster/agentroster/handlers/live"
	"github.com/agentroster/agentroster/models"
)

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
	st, ok := h.broker.Subscribe(s.OrgID, p.User.ID.String(), session, key)
	if !ok {
		h.fail(c, newErr(http.StatusTooManyRequests, "too_many_streams", "too many live update streams for this session"))
		return
	}
	// Access that ended between the checks above and subscribing was
	// announced before this stream listened: check once more now.
	if err := h.streamAllowed(c, s.OrgID, sessionID); err != nil {
		st.Close()
		h.fail(c, err)
		return
	}
	if h.detachStream(c, st) {
		return
	}
	defer st.Close()

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
		case <-st.Ended():
			return // removed, disabled, password changed or signed out
		case <-tick.C:
			if !send(": heartbeat\n\n") {
				return
			}
		case ev := <-st.Events():
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
func (h *Handler) detachStream(c *gin.Context, st *live.Stream) bool {
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
		defer st.Close()
		defer conn.Close()
		h.serveStream(conn, head.Bytes(), st)
	}()
	return true
}

// serveStream writes a detached stream's events until the client leaves, its
// access ends or the server shuts down.
func (h *Handler) serveStream(conn net.Conn, head []byte, st *live.Stream) {
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
		case <-st.Ended():
			return // removed, disabled, password changed or signed out
		case <-tick.C:
			if !send([]byte(": heartbeat\n\n")) {
				return
			}
		case ev := <-st.Events():
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
