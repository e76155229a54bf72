package client

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff produces growing waits with jitter for polling: Min, then ×Factor
// up to Max, each spread by ±Jitter (a fraction) so many runtimes do not poll
// in step.
type Backoff struct {
	Min, Max time.Duration
	Factor   float64
	Jitter   float64
	cur      time.Duration
}

// NewBackoff starts at min and grows by 1.5 up to max with ±20 % jitter.
func NewBackoff(min, max time.Duration) *Backoff {
	return &Backoff{Min: min, Max: max, Factor: 1.5, Jitter: 0.2}
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.Min
	default:
		b.cur = time.Duration(float64(b.cur) * b.Factor)
	}
	if b.cur > b.Max {
		b.cur = b.Max
	}
	d := b.cur
	if b.Jitter > 0 {
		d = time.Duration(float64(d) * (1 - b.Jitter + 2*b.Jitter*rand.Float64()))
	}
	return d
}

// Reset starts again from Min.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d or until ctx ends, and reports whether the full wait passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Wait returns how long to wait after err: the next backoff, or longer when a
// 429 asked for it with Retry-After.
func (b *Backoff) Wait(err error) time.Duration {
	d := b.Next()
	if ae, ok := err.(*APIError); ok && ae.RetryAfter > d {
		d = ae.RetryAfter
	}
	return d
}
