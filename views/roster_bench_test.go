package views

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/agentroster/agentroster/models"
)

// BenchmarkRosterTable renders one roster page of 50 rows for an admin: a
// third each pending, approved and stopped, as BenchmarkRosterPage10k seeds.
func BenchmarkRosterTable(b *testing.B) {
	now := time.Now()
	statuses := []string{models.StatusPending, models.StatusApproved, models.StatusStopped}
	d := RosterData{CanWrite: true, SelfURL: "/agents", NextURL: "/agents?after=x"}
	for i := range 50 {
		id := fmt.Sprintf("agent-%d", i)
		d.Rows = append(d.Rows, RosterRow{TeamName: "Default", Online: i%2 == 0, Agent: models.Agent{
			ID: id, Title: "Agent " + id, Status: statuses[i%3], MachineName: "host-1",
			LLMVersion: "claude-opus-4-7", AdapterType: "mcp", JoinedVia: "register", CreatedAt: now,
		}})
	}
	ctx := b.Context()
	for b.Loop() {
		if err := RosterTable(d).Render(ctx, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
