package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/models"
)

// isAPI reports whether the request is answered in JSON: the /api/ routes,
// and pages that asked for JSON (the invite landing page with Accept: application/json).
func isAPI(c *gin.Context) bool {
	return strings.HasPrefix(c.Request.URL.Path, "/api/") || c.GetBool(ctxJSON)
}

func isHTMX(c *gin.Context) bool { return c.GetHeader("HX-Request") == "true" }

// render writes a templ component with status 200.
func (h *Handler) render(c *gin.Context, comp templ.Component) {
	h.renderStatus(c, http.StatusOK, comp)
}

// renderStatus renders into a buffer first, so a failing template is a clean
// 500 rather than half a page.
func (h *Handler) renderStatus(c *gin.Context, status int, comp templ.Component) {
	buf := renderBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledRender {
			buf.Reset()
			renderBuffers.Put(buf)
		}
	}()
	if err := comp.Render(c.Request.Context(), buf); err != nil {
		logger(c).Error("render", "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error"))
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// renderBuffers keeps page buffers between requests: a roster page is about
// 100 KB, which a fresh buffer reaches by growing (and copying) a dozen times.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledRender bounds the buffers kept, so one huge page does not pin its
// memory.
const maxPooledRender = 1 << 20

// toast asks the page to show a message (see static/js/app.js).
func toast(c *gin.Context, message, level string) {
	b, _ := json.Marshal(map[string]any{"showToast": map[string]string{"message": message, "level": level}})
	c.Header("HX-Trigger", string(b))
}

// seeOther answers a plain form post with a redirect (303) and an htmx request
// with HX-Redirect.
func seeOther(c *gin.Context, to string) {
	if isHTMX(c) {
		c.Header("HX-Redirect", to)
		c.Status(http.StatusNoContent)
		return
	}
	c.Redirect(http.StatusSeeOther, to)
}

func (h *Handler) redirectToLogin(c *gin.Context) {
	next := c.Request.URL.RequestURI()
	to := "/login"
	if c.Request.Method == http.MethodGet && next != "/" && safeNext(next) {
		to += "?next=" + url.QueryEscape(next)
	}
	seeOther(c, to)
	c.Abort()
}

// safeNext accepts only a same-origin path as a post-login destination: it
// must parse as a URL without scheme, host or user, start with a single "/",
// and hold no control character or backslash, either as written or once
// percent-decoded; its decoded path may not start with "//" nor hold a dot
// segment. Browsers drop tabs and newlines and read "\\" as "/", so
// "/\t/evil.com" or "/\\evil.com" would otherwise lead to another host.
func safeNext(next string) bool {
	if len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || unsafeInPath(next) {
		return false
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	p := u.Path
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || unsafeInPath(p) || unsafeInPath(u.Fragment) {
		return false
	}
	// No dot segments: "/.//evil.com" would read as "//evil.com" once resolved.
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// unsafeInPath reports a control character, a backslash or invalid UTF-8.
func unsafeInPath(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\\' {
			return true
		}
	}
	return false
}

// decodeJSON reads a JSON body (at most maxJSONBody) into v. An empty body is
// an empty object. Unknown fields are ignored; wrong types, bad syntax,
// invalid UTF-8 and trailing data are 400s naming what is wrong.
func decodeJSON(c *gin.Context, v any) error {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		return newErr(http.StatusBadRequest, "malformed_json", "could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if ct := c.GetHeader("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasSuffix(strings.Split(ct, ";")[0], "+json") {
		return newErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
	}
	if !utf8.Valid(body) {
		return newErr(http.StatusBadRequest, "malformed_json", "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "body"
			}
			return &models.ValidationError{Fields: map[string]string{field: fmt.Sprintf("must be a %s", jsonKind(te.Type.Kind().String()))}}
		}
		return newErr(http.StatusBadRequest, "malformed_json", "request body is not valid JSON")
	}
	if dec.More() {
		return newErr(http.StatusBadRequest, "malformed_json", "request body has data after the JSON value")
	}
	return nil
}

// parseForm parses a form body; a malformed one is a 400, an oversized one 413.
func parseForm(c *gin.Context) error {
	if err := c.Request.ParseForm(); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		return newErr(http.StatusBadRequest, "malformed_form", "request body is not a valid form")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "number"
	case goKind == "string":
		return "string"
	case goKind == "bool":
		return "boolean"
	case goKind == "struct", goKind == "map":
		return "object"
	case goKind == "slice":
		return "list"
	}
	return "JSON " + goKind
}
