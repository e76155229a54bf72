package handlers

import (
	"net/http"
	"net/url"
	"testing"
)

func TestSafeNext(t *testing.T) {
	for next, want := range map[string]bool{
		// Same-origin paths, queries and fragments.
		"/agents":                          true,
		"/agents/web-1":                    true,
		"/agents?status=pending&q=web":     true,
		"/agents/join-requests?after=10#x": true,
		"/settings/members?done=added":     true,
		"/agents/%E2%9C%93":                true,
		"/a/%2F%2Fb":                       true,
		// Other hosts and schemes.
		"":                                  false,
		"agents":                            false,
		"//evil.com":                        false,
		"///evil.com":                       false,
		"https://evil.com":                  false,
		"http:evil.com":                     false,
		"javascript:alert(1)":               false,
		"JavaScript:alert(document)":        false,
		"data:text/html,<script>":           false,
		"/\\evil.com":                       false,
		"\\\\evil.com":                      false,
		"/\t/evil.com":                      false,
		"/\n/evil.com":                      false,
		"/\r\n/evil.com":                    false,
		"/ /evil.com":                       true, // a space is a path character, not dropped by browsers
		"/\x00/evil.com":                    false,
		"/agents\x7f":                       false,
		"/\u0085/evil.com":                  false,
		"/%2F/evil.com":                     false,
		"/%2f%2fevil.com":                   false,
		"/%09/evil.com":                     false,
		"/%0A/evil.com":                     false,
		"/%5Cevil.com":                      false,
		"/%5C%5Cevil.com":                   false,
		"/agents/%ff":                       false,
		"/agents#\t/evil":                   false,
		"/agents?next=//evil.com":           true, // the query is ours to read, not a destination
		"/\\\\evil.com":                     false,
		"/.//evil.com":                      false,
		"/%2e//evil.com":                    false,
		"/agents/../settings":               false,
		"https:/evil.com":                   false,
		"/agents?q=" + string([]byte{0xff}): false,
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %v, want %v", next, got, want)
		}
	}
}

// TestLoginNextRedirect: the sign-in form redirects to a same-origin next
// and to /agents for everything else.
func TestLoginNextRedirect(t *testing.T) {
	e := newEnv(t)
	for next, want := range map[string]string{
		"/settings/teams?x=1": "/settings/teams?x=1",
		"/\t/evil.com":        "/agents",
		"/\\evil.com":         "/agents",
		"//evil.com":          "/agents",
		"https://evil.com":    "/agents",
		"javascript:alert(1)": "/agents",
		"/%2F/evil.com":       "/agents",
		"/%09/evil.com":       "/agents",
	} {
		resp := e.form(e.browser(), "/login", url.Values{"email": {"root@example.com"}, "password": {testPassword}, "next": {next}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("next %q: %d to %q, want 303 to %q", next, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}
