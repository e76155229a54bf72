package live

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models"
)

// Announcer sends events that only refresh pages, after their change has
// committed, many in one NOTIFY statement. A transaction that notifies holds
// a database-wide lock while it commits, so notifying transactions commit
// one at a time; announcing outside the transaction keeps frequent changes
// (registrations) from queueing behind each other. Changes that replicas must
// act on (revocations, stops) use models.Publish inside their transaction
// instead.
type Announcer struct {
	db    bun.IDB
	queue chan models.Event
}

// maxAnnounceBatch bounds the events sent in one statement (a NOTIFY payload
// is at most 8000 bytes each; the statement has no such bound).
const maxAnnounceBatch = 512

// NewAnnouncer returns an announcer on db; call Run to start it.
func NewAnnouncer(db bun.IDB) *Announcer {
	return &Announcer{db: db, queue: make(chan models.Event, 4096)}
}

// Announce queues ev without blocking. When the queue is full the event is
// dropped: pages catch up on their next event or reload.
func (a *Announcer) Announce(ev models.Event) {
	select {
	case a.queue <- ev:
	default:
	}
}

// Run sends queued events until ctx ends.
func (a *Announcer) Run(ctx context.Context) {
	for {
		var first models.Event
		select {
		case <-ctx.Done():
			return
		case first = <-a.queue:
		}
		evs := []models.Event{first}
	drain:
		for len(evs) < maxAnnounceBatch {
			select {
			case ev := <-a.queue:
				evs = append(evs, ev)
			default:
				break drain
			}
		}
		models.Announce(ctx, a.db, evs) // failures are not retried: the events are hints
	}
}
