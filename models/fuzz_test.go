package models

import (
	"strings"
	"testing"
)

func FuzzValidAgentID(f *testing.F) {
	for _, s := range []string{"claude-1", "a", "invites", "Claude", "-x", "a.b_c-d", strings.Repeat("a", 63), strings.Repeat("a", 64), "ä", "a\x00", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		ok := ValidAgentID(id)
		if !ok {
			return
		}
		if len(id) == 0 || len(id) > 63 || reservedAgentIDs[id] {
			t.Fatalf("accepted %q", id)
		}
		for i, r := range id {
			lower := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
			if !lower && (i == 0 || !strings.ContainsRune("._-", r)) {
				t.Fatalf("accepted %q (rune %q at %d)", id, r, i)
			}
		}
	})
}

func FuzzAPIKeyFormat(f *testing.F) {
	f.Add(NewAPIKey())
	for _, s := range []string{"ag_ak_", "ag_ak_short", "ApiKey ag_ak_x", "ag_bt_" + RandomBase62(40), "ag_ak_" + strings.Repeat("é", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidAPIKeyFormat(s) {
			return
		}
		rest := strings.TrimPrefix(s, APIKeyPrefix)
		if !strings.HasPrefix(s, APIKeyPrefix) || len(rest) < 40 || len(rest) > 128 || !IsBase62(rest, 0) {
			t.Fatalf("accepted %q", s)
		}
	})
}

func FuzzSealOpen(f *testing.F) {
	s, err := NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("token", []byte("garbage"))
	f.Fuzz(func(t *testing.T, plain string, junk []byte) {
		got, err := s.Open(s.Seal(plain))
		if err != nil || got != plain {
			t.Fatalf("round trip of %q: %q %v", plain, got, err)
		}
		if _, err := s.Open(junk); err == nil && len(junk) < 28 {
			t.Fatalf("opened junk %x", junk)
		}
	})
}
