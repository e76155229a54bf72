package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/gin-gonic/gin"
)

var contract struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

// loadContract parses and validates the embedded OpenAPI document once per
// test binary.
func loadContract(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	contract.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
		if err != nil {
			contract.err = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			contract.err = err
			return
		}
		contract.doc = doc
		contract.router, contract.err = legacy.NewRouter(doc)
	})
	if contract.err != nil {
		t.Fatalf("openapi.json: %v", contract.err)
	}
	return contract.doc, contract.router
}

// validateAPI wraps the server of a test env: every response to an /api/v1
// request is checked against the OpenAPI document before it reaches the
// client, and a mismatch fails the test. A route the document does not
// describe fails too, unless it is answered as an unknown path (404 or 405
// with the error body). JSON answers of the invite landing page /invite/{token}
// are checked as GET /api/v1/invites/{token}.
func validateAPI(t testing.TB, next http.Handler) http.Handler {
	doc, router := loadContract(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		landing := strings.HasPrefix(r.URL.Path, "/invite/")
		if !strings.HasPrefix(r.URL.Path, "/api/v1/") && !landing || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		check := r
		if landing {
			// The invite landing page answers JSON as GET /api/v1/invites/{token};
			// its HTML is not part of the contract.
			check = nil
			if strings.HasPrefix(rec.header.Get("Content-Type"), "application/json") && r.Method == http.MethodGet {
				check = r.Clone(r.Context())
				check.URL.Path = "/api/v1/invites/" + strings.TrimPrefix(r.URL.Path, "/invite/")
			}
		}
		if check != nil {
			if err := checkResponse(r.Context(), doc, router, check, rec); err != nil {
				body := rec.body.String()
				if len(body) > 600 {
					body = body[:600] + "…"
				}
				t.Errorf("OpenAPI contract: %s %s answered %d: %s\nbody: %s", r.Method, r.URL.Path, rec.status, contractError(err), body)
			}
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		w.Write(rec.body.Bytes())
	})
}

func checkResponse(ctx context.Context, doc *openapi3.T, router routers.Router, r *http.Request, rec *recorder) error {
	route, params, err := router.FindRoute(r)
	var re *routers.RouteError
	if errors.As(err, &re) {
		// Not in the document: fine only for an unknown path or method.
		if rec.status != http.StatusNotFound && rec.status != http.StatusMethodNotAllowed {
			return errors.New("route is not in openapi.json")
		}
		var v any
		if err := json.Unmarshal(rec.body.Bytes(), &v); err != nil {
			return err
		}
		return doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.VisitAsResponse())
	}
	if err != nil {
		return err
	}
	return openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route},
		Status:                 rec.status,
		Header:                 rec.header,
		Body:                   io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	})
}

// contractError shortens a schema mismatch to where and why (the full
// error repeats the whole schema).
func contractError(err error) string {
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		prefix := ""
		var re *openapi3filter.ResponseError
		if errors.As(err, &re) {
			prefix = re.Reason + ": "
		}
		return prefix + "at /" + strings.Join(se.JSONPointer(), "/") + ": " + se.Reason
	}
	return err.Error()
}

// recorder buffers a response so it can be validated before it is sent.
type recorder struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

func (r *recorder) Flush() {}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPIDocumentsEveryRoute compares gin's route table with the
// document: every /api/v1 route and /mcp (described as a non-JSON route) must
// be described, and every described operation must exist.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc, _ := loadContract(t)
	e := newEnv(t)
	engine := e.h.Routes().(*gin.Engine)
	served := map[string]bool{}
	for _, rt := range engine.Routes() {
		if !strings.HasPrefix(rt.Path, "/api/v1/") && rt.Path != mcpPath {
			continue
		}
		op := rt.Method + " " + ginParam.ReplaceAllString(rt.Path, "{$1}")
		served[op] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	var missing, extra []string
	for op := range served {
		if !documented[op] {
			missing = append(missing, op)
		}
	}
	for op := range documented {
		if !served[op] {
			extra = append(extra, op)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	for _, op := range missing {
		t.Errorf("route %s is not in openapi.json", op)
	}
	for _, op := range extra {
		t.Errorf("openapi.json describes %s, which no route serves", op)
	}
	if len(served) < 30 {
		t.Fatalf("only %d /api/v1 routes found; route table not read?", len(served))
	}
}

// TestOpenAPIServed checks the document is served as JSON and parses as the
// embedded one.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	res := e.call(http.MethodGet, "/api/v1/openapi.json", "", nil).want(http.StatusOK)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q", ct)
	}
	if !bytes.Equal(res.Body, openAPIDocument) {
		t.Fatal("served document differs from the embedded one")
	}
	var doc struct {
		OpenAPI    string `json:"openapi"`
		Components struct {
			SecuritySchemes map[string]struct {
				Type   string `json:"type"`
				Name   string `json:"name"`
				Scheme string `json:"scheme"`
			} `json:"securitySchemes"`
		} `json:"components"`
	}
	res.decode(&doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	s := doc.Components.SecuritySchemes
	if s["ApiKey"].Type != "apiKey" || s["ApiKey"].Name != "Authorization" || s["Bearer"].Scheme != "bearer" {
		t.Fatalf("security schemes %+v", s)
	}
}

// TestAPIDocsPage checks the reference page lists every documented operation
// and schema, is served without sign-in, and loads nothing from elsewhere.
func TestAPIDocsPage(t *testing.T) {
	doc, _ := loadContract(t)
	e := newEnv(t)
	status, body := e.get(http.DefaultClient, "/docs/api")
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	page := parseHTML(t, body)
	ops := 0
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops++
			if !page.has(`[data-testid="api-operation"][data-method="` + method + `"][data-path="` + path + `"]`) {
				t.Errorf("page lacks %s %s", method, path)
			}
		}
	}
	if n := page.count(`[data-testid="api-operation"]`); n != ops {
		t.Errorf("%d operations on the page, %d in the document", n, ops)
	}
	for name := range doc.Components.Schemas {
		if !page.has(`[id="schema-` + name + `"]`) {
			t.Errorf("page lacks schema %s", name)
		}
	}
	for _, want := range []string{"ApiKey", "Bearer", "agentPickupEnabled", "/api/v1/teams/{teamId}/agents/register"} {
		if !page.hasText(want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if !page.has(`a[href="/api/v1/openapi.json"]`) {
		t.Error("page does not link the document")
	}
	offsite := page.Find("[src], [href]").FilterFunction(func(_ int, s *goquery.Selection) bool {
		u := s.AttrOr("src", s.AttrOr("href", ""))
		return strings.HasPrefix(u, "//") || strings.HasPrefix(u, "http:") || strings.HasPrefix(u, "https:")
	})
	if offsite.Length() != 0 {
		t.Error("page loads an asset from another origin")
	}
	if page.has("script") {
		t.Error("page has a script")
	}
}
