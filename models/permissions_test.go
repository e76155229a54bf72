package models_test

import (
	"reflect"
	"testing"

	"github.com/agentroster/agentroster/models"
)

func TestResolvePermissions(t *testing.T) {
	cols := []models.BoardColumn{
		{ID: "col_backlog", Name: "Backlog", AgentCanRead: true},
		{ID: "col_in_progress", Name: "In progress", AgentCanModerate: true}, // moderate implies read
		{ID: "col_in_review", Name: "In review"},
		{ID: "col_done", Name: "Done"},
	}
	cases := []struct {
		name             string
		grants           models.Grants
		read, moderate   []string
		transition, perm []string
	}{
		{
			name: "defaults only", read: []string{"col_backlog", "col_in_progress"}, moderate: []string{"col_in_progress"},
			transition: []string{}, perm: []string{"board.read", "board.moderate"},
		},
		{
			name: "grants add to defaults; a transition reads its source",
			grants: models.Grants{
				Columns:     []models.ColumnGrant{{ColumnID: "col_in_review", CanModerate: true}, {ColumnID: "col_backlog"}},
				Transitions: []models.TransitionGrant{{From: "col_done", To: "col_backlog"}},
			},
			read: []string{"col_backlog", "col_in_progress", "col_in_review", "col_done"}, moderate: []string{"col_in_progress", "col_in_review"},
			transition: []string{"col_done->col_backlog"}, perm: []string{"board.read", "board.moderate", "board.transition"},
		},
		{
			name:   "grants on unknown columns are ignored",
			grants: models.Grants{Columns: []models.ColumnGrant{{ColumnID: "col_gone", CanRead: true}}, Transitions: []models.TransitionGrant{{From: "col_gone", To: "col_done"}}},
			read:   []string{"col_backlog", "col_in_progress"}, moderate: []string{"col_in_progress"}, transition: []string{}, perm: []string{"board.read", "board.moderate"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := models.Resolve(cols, c.grants)
			if !reflect.DeepEqual(p.CanRead, c.read) || !reflect.DeepEqual(p.CanModerate, c.moderate) ||
				!reflect.DeepEqual(p.CanTransition, c.transition) || !reflect.DeepEqual(p.Permissions, c.perm) {
				t.Fatalf("got read %v moderate %v transition %v permissions %v", p.CanRead, p.CanModerate, p.CanTransition, p.Permissions)
			}
			if len(p.ColumnAccess) != len(cols) || p.CardTypeAccess == nil {
				t.Fatalf("column access %v", p.ColumnAccess)
			}
			for _, a := range p.ColumnAccess {
				if a.CanModerate && !a.CanRead {
					t.Fatalf("moderate without read: %+v", a)
				}
			}
		})
	}
	// No columns at all: still board.read, empty lists (never null).
	p := models.Resolve(nil, models.Grants{})
	if p.CanRead == nil || p.ColumnAccess == nil || !reflect.DeepEqual(p.Permissions, []string{"board.read"}) {
		t.Fatalf("empty board: %+v", p)
	}
}

func TestParseTransition(t *testing.T) {
	for s, ok := range map[string]bool{
		"col_a->col_b": true, " col_a -> col_b ": true, "col_a->col_a": false, "col_a-col_b": false, "a->col_b": false, "col_a->": false, "": false,
	} {
		if _, got := models.ParseTransition(s); got != ok {
			t.Errorf("ParseTransition(%q) = %v, want %v", s, got, ok)
		}
	}
}

func TestColumnIDFor(t *testing.T) {
	for name, want := range map[string]string{"In review": "col_in_review", "  QA / Test!! ": "col_qa_test", "Ünïcode": "col_n_code"} {
		if got := models.ColumnIDFor(name); got != want {
			t.Errorf("ColumnIDFor(%q) = %q, want %q", name, got, want)
		}
	}
	if models.ValidColumnID(models.ColumnIDFor("!!!")) {
		t.Error("a name without letters gave a valid id")
	}
}
