package handlers

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a set of token buckets keyed by a string (an IP, an email). Each
// replica keeps its own; idle buckets are dropped so memory stays bounded.
type limiter struct {
	mu      sync.Mutex
	every   time.Duration
	burst   int
	buckets map[string]*bucket
	max     int
	// rejected, when set, is called for every refusal (a metric).
	rejected func()
}

type bucket struct {
	lim      *rate.Limiter
	seen     time.Time
	inflight int // attempts begun and not yet ended (see attempt)
}

// newLimiter allows burst events at once, then one per every.
func newLimiter(every time.Duration, burst int) *limiter {
	return &limiter{every: every, burst: burst, buckets: map[string]*bucket{}, max: 100_000}
}

// allow takes one token for key. When none is left it returns false and how
// long until the next one.
func (l *limiter) allow(key string) (bool, time.Duration) {
	now := time.Now()
	l.mu.Lock()
	r := l.bucketLocked(key, now).lim.ReserveN(now, 1)
	l.mu.Unlock()
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		if l.rejected != nil {
			l.rejected()
		}
		return false, d
	}
	return true, 0
}

// attempt begins an attempt that spends key's budget only if it fails (a
// sign-in: correct passwords take nothing). It is refused while the tokens
// left cannot cover the attempts already in flight, so concurrent attempts
// cannot outrun the budget. done ends it, taking a token when it failed.
func (l *limiter) attempt(key string) (ok bool, retry time.Duration, done func(failed bool)) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketLocked(key, now)
	if tokens := b.lim.TokensAt(now) - float64(b.inflight); tokens < 1 {
		if l.rejected != nil {
			l.rejected()
		}
		return false, time.Duration((1 - tokens) * float64(l.every)), func(bool) {}
	}
	b.inflight++
	return true, 0, func(failed bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		b.inflight--
		if failed {
			b.lim.Allow()
		}
	}
}

// bucketLocked is key's bucket, made when missing; l.mu must be held.
func (l *limiter) bucketLocked(key string, now time.Time) *bucket {
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.sweepLocked(now)
		}
		b = &bucket{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b
}

// reset forgets key's bucket, so its next use starts from a full budget.
func (l *limiter) reset(key string) {
	l.mu.Lock()
	delete(l.buckets, key)
	l.mu.Unlock()
}

// sweepLocked drops buckets that have refilled completely (or, when every
// bucket is busy, the oldest half) so the map cannot grow without bound.
func (l *limiter) sweepLocked(now time.Time) {
	full := l.every * time.Duration(l.burst)
	for k, b := range l.buckets {
		if now.Sub(b.seen) > full {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.max {
		return
	}
	n := 0
	for k := range l.buckets {
		if n >= l.max/2 {
			break
		}
		delete(l.buckets, k)
		n++
	}
}

// sweep is called periodically to drop idle buckets.
func (l *limiter) sweep() {
	l.mu.Lock()
	l.sweepLocked(time.Now())
	l.mu.Unlock()
}
