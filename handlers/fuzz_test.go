package handlers

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// FuzzDecodeJSON: any body gets a 2xx or a 4xx with an error code, never a panic or 5xx.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"email":"a@b.c","password":"x"}`, `{"email":5}`, `[`, `{"a":` + strings.Repeat("[", 20000), "\xff\xfe", `{"email":"\u0000"}`, `{} {}`, ``} {
		f.Add(s, "application/json")
	}
	f.Add(`{}`, "text/plain")
	h := &Handler{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	gin.SetMode(gin.ReleaseMode)
	f.Fuzz(func(t *testing.T, body, contentType string) {
		w := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(w)
		c.Request = httptest.NewRequest(http.MethodPost, "/api/v1/auth/login", strings.NewReader(body))
		c.Request.Header.Set("Content-Type", contentType)
		c.Request.Body = http.MaxBytesReader(w, c.Request.Body, maxJSONBody)
		var req loginRequest
		if err := decodeJSON(c, &req); err != nil {
			status, code, _, _ := classify(err)
			if status < 400 || status >= 500 || code == "" {
				t.Fatalf("body %q: status %d code %q", body, status, code)
			}
			h.fail(c, err)
			if w.Code >= 500 {
				t.Fatalf("body %q answered %d", body, w.Code)
			}
		}
	})
}

// FuzzBearerHeader: any Authorization header is refused cleanly unless it is a real token.
func FuzzBearerHeader(f *testing.F) {
	for _, s := range []string{"Bearer ag_bt_x", "Bearer", "bearer  ag_bt_", "ApiKey ag_ak_x", "Basic dXNlcjpwYXNz", "Bearer ag_bt_" + strings.Repeat("A", 4000)} {
		f.Add(s)
	}
	h, err := New(Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Secret: []byte("0123456789abcdef0123456789abcdef-fuzz")})
	if err != nil {
		f.Fatal(err)
	}
	defer h.Close()
	gin.SetMode(gin.ReleaseMode)
	f.Fuzz(func(t *testing.T, header string) {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest(http.MethodGet, "/api/v1/organizations", nil)
		c.Request.Header.Set("Authorization", header)
		if c.Request.Header.Get("Authorization") == "" {
			return // not a header value net/http would deliver
		}
		if p, err := h.authenticate(c); err == nil || p != nil {
			t.Fatalf("header %q authenticated", header)
		}
	})
}
