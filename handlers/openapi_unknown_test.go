package handlers

import (
	"net/http"
	"testing"
)

// TestUnknownAPIPaths checks unknown paths and methods under /api/v1 answer
// the error body (and that the contract check lets them through).
func TestUnknownAPIPaths(t *testing.T) {
	e := newEnv(t)
	e.call(http.MethodGet, "/api/v1/no-such-thing", "", nil).wantError(http.StatusNotFound, "not_found")
	e.call(http.MethodPut, "/api/v1/organizations", e.token(e.sa.Email), map[string]any{}).wantError(http.StatusMethodNotAllowed, "method_not_allowed")
}
