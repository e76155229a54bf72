package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
)

// Bounds of the server that shape how streams are opened: 8 streams per
// session, 10 sign-ins per email and 20 per client IP at once.
const (
	streamsPerSession = 8
	sessionsPerUser   = 10
	sessionsPerIP     = 15
)

// holdStreams opens n live-update streams as signed-in viewers (from several
// loopback addresses, within the sign-in limits), reads the server's RSS once
// they are all open, then publishes one event and counts the streams that
// receive it. Streams that fail to open or miss the event are errors.
func holdStreams(ctx context.Context, e *loadEnv, db *bun.DB, n, pid int) (result, error) {
	r := result{Name: "sse", Unit: "streams"}
	sessions := (n + streamsPerSession - 1) / streamsPerSession
	users := (sessions + sessionsPerUser - 1) / sessionsPerUser
	password := models.RandomBase62(20)
	for u := range users {
		user, err := models.CreateUser(ctx, db, fmt.Sprintf("sse-%d@example.com", u), password, false, models.System)
		if err != nil {
			return r, err
		}
		if err := models.AddMember(ctx, db, e.seed.OrgID, user.ID, models.RoleViewer, models.System); err != nil {
			return r, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		opened   atomic.Int64
		received atomic.Int64
		firstErr atomic.Value
	)
	fail := func(err error) { firstErr.CompareAndSwap(nil, err.Error()) }
	want := "event: agent-" + e.seed.Agents[0].ID
	for s := range sessions {
		ip := net.IPv4(127, 0, 1, byte(1+s/sessionsPerIP))
		jar, _ := cookiejar.New(nil)
		tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}).DialContext, MaxIdleConnsPerHost: streamsPerSession}
		c := &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if err := signIn(c, e.base, fmt.Sprintf("sse-%d@example.com", s/sessionsPerUser), password); err != nil {
			return r, err
		}
		for range min(streamsPerSession, n-s*streamsPerSession) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/events", nil)
			resp, err := c.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				if err == nil {
					err = fmt.Errorf("status %d", resp.StatusCode)
					resp.Body.Close()
				}
				fail(err)
				r.Errors++
				continue
			}
			opened.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer resp.Body.Close()
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if sc.Text() == want {
						received.Add(1)
					}
				}
			}()
		}
	}
	time.Sleep(2 * time.Second)
	r.Requests = opened.Load()
	r.RSSMiB = rssMiB(pid)
	if e.pprof != "" {
		saveProfile(e.pprof, "heap", e.profileDir+"/sse-heap.prof")
		saveProfile(e.pprof, "goroutine", e.profileDir+"/sse-goroutine.prof")
		saveProfile(e.pprof, "heap?debug=1", e.profileDir+"/sse-heap.txt")
	}
	if err := models.Publish(ctx, db, models.Event{Org: e.seed.OrgID, Kind: "agent", ID: e.seed.Agents[0].ID}); err != nil {
		return r, err
	}
	for deadline := time.Now().Add(5 * time.Second); received.Load() < r.Requests && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if missed := r.Requests - received.Load(); missed > 0 {
		r.Errors += missed
		fail(fmt.Errorf("%d open streams did not receive the event within 5 s", missed))
	}
	if v := firstErr.Load(); v != nil {
		r.FirstError = v.(string)
	}
	cancel()
	wg.Wait()
	return r, nil
}

// signIn posts the sign-in form with client c.
func signIn(c *http.Client, base, email, password string) error {
	resp, err := c.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("sign in %s: status %d", email, resp.StatusCode)
	}
	return nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// serverLatency returns p50 and p99 of the request durations the server
// logged after offset from (JSON log lines of msg "request").
func serverLatency(path string, from int64) (p50, p99 float64, routes []routeLatency) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, nil
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return 0, 0, nil
	}
	var ds []float64
	byRoute := map[string][]float64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), `"msg":"request"`) {
			continue
		}
		var rec struct {
			Method   string  `json:"method"`
			Route    string  `json:"route"`
			Duration float64 `json:"duration_ms"`
		}
		if json.Unmarshal(line, &rec) == nil {
			ds = append(ds, rec.Duration)
			r := rec.Method + " " + rec.Route
			byRoute[r] = append(byRoute[r], rec.Duration)
		}
	}
	if len(ds) == 0 {
		return 0, 0, nil
	}
	p50, p99 = percentiles(ds)
	if len(byRoute) > 1 {
		for r, ds := range byRoute {
			rl := routeLatency{Route: r, Requests: len(ds)}
			rl.P50ms, rl.P99ms = percentiles(ds)
			routes = append(routes, rl)
		}
		sort.Slice(routes, func(i, j int) bool { return routes[i].Route < routes[j].Route })
	}
	return p50, p99, routes
}

// routeLatency is the server's own time for one route within a scenario.
type routeLatency struct {
	Route    string  `json:"route"`
	Requests int     `json:"requests"`
	P50ms    float64 `json:"p50Ms"`
	P99ms    float64 `json:"p99Ms"`
}

// percentiles sorts ds and returns its p50 and p99.
func percentiles(ds []float64) (p50, p99 float64) {
	sort.Float64s(ds)
	return ds[len(ds)/2], ds[len(ds)*99/100]
}

// saveProfile saves one of the server's named profiles.
func saveProfile(addr, name, path string) {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/%s", addr, name))
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if f, err := os.Create(path); err == nil {
		io.Copy(f, resp.Body)
		f.Close()
	}
}

// cpuProfile saves a CPU profile of the server taken over d.
func cpuProfile(addr string, d time.Duration, path string) {
	secs := max(int(d/time.Second), 1)
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
}
