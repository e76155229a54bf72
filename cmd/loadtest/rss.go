package main

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// rssRecorder samples the server's resident set every rssEvery, labelled with
// the phase the load command is in.
type rssRecorder struct {
	pid     int
	mu      sync.Mutex
	current string
	byPhase []*rssPhase
	done    chan struct{}
	once    sync.Once
}

const rssEvery = 250 * time.Millisecond

// rssPhase is the server's RSS over one phase of the run.
type rssPhase struct {
	Name    string    `json:"phase"`
	Samples []float64 `json:"rssMiB"` // one every 250 ms
	MaxMiB  float64   `json:"maxMiB"`
}

func newRSSRecorder(pid int) *rssRecorder {
	r := &rssRecorder{pid: pid, done: make(chan struct{})}
	go func() {
		t := time.NewTicker(rssEvery)
		defer t.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-t.C:
				v := rssMiB(pid)
				r.mu.Lock()
				if n := len(r.byPhase); n > 0 && v > 0 {
					p := r.byPhase[n-1]
					p.Samples = append(p.Samples, v)
					p.MaxMiB = math.Max(p.MaxMiB, v)
				}
				r.mu.Unlock()
			}
		}
	}()
	return r
}

// phase starts a phase (a scenario's warm-up and measurement, the streams).
func (r *rssRecorder) phase(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byPhase = append(r.byPhase, &rssPhase{Name: name})
}

func (r *rssRecorder) stop() { r.once.Do(func() { close(r.done) }) }

func (r *rssRecorder) phases() []rssPhase {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]rssPhase, len(r.byPhase))
	for i, p := range r.byPhase {
		out[i] = *p
		out[i].Samples = append([]float64(nil), p.Samples...)
	}
	return out
}

// printRSS prints the RSS over time: per phase its maximum and one value per
// second (the maximum of that second's samples).
func printRSS(phases []rssPhase) {
	fmt.Printf("\nserver RSS over time (MiB; max, then each second's max):\n")
	per := int(time.Second / rssEvery)
	for _, p := range phases {
		var secs []string
		for i := 0; i < len(p.Samples); i += per {
			m := 0.0
			for _, v := range p.Samples[i:min(i+per, len(p.Samples))] {
				m = math.Max(m, v)
			}
			secs = append(secs, fmt.Sprintf("%.0f", m))
		}
		fmt.Printf("  %-16s %6.1f  %s\n", p.Name, p.MaxMiB, strings.Join(secs, " "))
	}
}

// goal is one figure of the performance goals, measured in this run.
type goal struct {
	Figure   string  `json:"figure"`
	Goal     string  `json:"goal"`
	Measured string  `json:"measured"`
	Value    float64 `json:"value"`
	Met      bool    `json:"met"`
}

// goalsOf computes the goals' figures from one run's results.
func goalsOf(rs []result, phases []rssPhase, pg float64, pgErr error) []goal {
	by := map[string]result{}
	for _, r := range rs {
		by[r.Name] = r
	}
	var gs []goal
	if r, ok := by["status"]; ok && by["healthz"].RPS > 0 {
		v := r.RPS / by["healthz"].RPS
		gs = append(gs, goal{"status poll / healthz", ">= 0.80x", fmt.Sprintf("%.2fx (%.0f / %.0f req/s)", v, r.RPS, by["healthz"].RPS), v, v >= 0.8})
	}
	if r, ok := by["online-offline"]; ok && pgErr == nil && pg > 0 {
		v := r.RPS / pg
		gs = append(gs, goal{"online/offline / pgbench single-row UPDATE", ">= 1.00x", fmt.Sprintf("%.2fx (%.0f/s against %.0f tps)", v, r.RPS, pg), v, v >= 1})
	}
	if r, ok := by["join-flow"]; ok {
		per := 0.0
		if pgErr == nil && pg > 0 {
			per = 1000 * r.RPS / pg
		}
		gs = append(gs, goal{"join flows", ">= 300/s or >= 30 per 1,000 UPDATEs", fmt.Sprintf("%.0f/s, %.1f per 1,000 UPDATEs", r.RPS, per), per, r.RPS >= 300 || per >= 30})
	}
	for _, name := range []string{"roster-json", "roster"} {
		if r, ok := by[name]; ok {
			gs = append(gs, goal{name + " page 1 at 4 clients, server p50", "< 10 ms", fmt.Sprintf("%.2f ms", r.ServerP50), r.ServerP50, r.ServerP50 > 0 && r.ServerP50 < 10})
		}
	}
	api, streams := 0.0, 0.0
	for _, p := range phases {
		switch p.Name {
		case "seed", "idle":
		case "sse":
			streams = math.Max(streams, p.MaxMiB)
		default:
			api = math.Max(api, p.MaxMiB)
		}
	}
	if api > 0 {
		gs = append(gs, goal{"server RSS under the API load (max)", "< 64 MiB", fmt.Sprintf("%.1f MiB", api), api, api < 64})
	}
	if streams > 0 {
		gs = append(gs, goal{"server RSS with the streams open, sign-ins included (max)", "< 100 MiB", fmt.Sprintf("%.1f MiB", streams), streams, streams < 100})
	}
	return gs
}

func printGoals(gs []goal, o options) {
	fmt.Printf("\ngoals (one run, server as shipped: GOMEMLIMIT %q, pgbench -c %d):\n", o.memLimit, o.pgClients)
	fmt.Printf("| figure | goal | measured | |\n|---|---|---|---|\n")
	for _, g := range gs {
		mark := "met"
		if !g.Met {
			mark = "MISSED"
		}
		fmt.Printf("| %s | %s | %s | %s |\n", g.Figure, g.Goal, g.Measured, mark)
	}
}
