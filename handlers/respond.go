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
	"github.com/google/uuid"

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
	// navChanged: the header's badges count again (an approval, a delete).
	b, _ := json.Marshal(map[string]any{"showToast": map[string]string{"message": message, "level": level}, "navChanged": true})
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
	if !utf8.Valid(body) || bytes.Contains(body, []byte(`\u0000`)) {
		if field, bad := badJSONText(body, ""); bad {
			return models.Invalid(field, badTextMessage)
		}
		if !utf8.Valid(body) {
			return models.Invalid("body", badTextMessage)
		}
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

// parseForm parses a form body; a malformed one is a 400, an oversized one
// 413, and a value (or name) holding a NUL byte or invalid UTF-8 a 400
// invalid_input naming the field. The request middleware calls it for every
// form post, so handlers read only checked values.
func parseForm(c *gin.Context) error {
	if err := readForm(c); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		return newErr(http.StatusBadRequest, "malformed_form", "request body is not a valid form")
	}
	fields := map[string]string{}
	badValues(fields, "form", c.Request.PostForm)
	if mf := c.Request.MultipartForm; mf != nil {
		badValues(fields, "form", mf.Value)
	}
	if len(fields) > 0 {
		return &models.ValidationError{Fields: fields}
	}
	return nil
}

// readForm parses the body of a form post, urlencoded or multipart.
func readForm(c *gin.Context) error {
	if err := c.Request.ParseForm(); err != nil {
		return err
	}
	if strings.HasPrefix(c.ContentType(), "multipart/form-data") {
		return c.Request.ParseMultipartForm(maxFormBody)
	}
	return nil
}

// badTextMessage is the field error for a NUL byte or invalid UTF-8: no
// text column can hold either, so they are refused before any handler runs.
const badTextMessage = "must be valid UTF-8 text without NUL bytes"

// badText reports whether s holds a NUL byte or invalid UTF-8.
func badText(s string) bool { return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) }

// badValues records in fields each name of vs with a bad value. A bad name
// itself is recorded under what (it cannot be shown as a field name).
func badValues(fields map[string]string, what string, vs map[string][]string) {
	for k, list := range vs {
		if badText(k) {
			fields[what] = badTextMessage
			continue
		}
		for _, v := range list {
			if badText(v) {
				fields[k] = badTextMessage
				break
			}
		}
	}
}

// badJSONText finds the first string of a JSON value (at path) that holds
// a NUL byte or invalid UTF-8 and returns its field path ("a.b", "list.2"),
// or "body" for the top level. The values are read raw, since the decoder
// would replace invalid UTF-8.
func badJSONText(raw []byte, path string) (string, bool) {
	name := path
	if name == "" {
		name = "body"
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch raw[0] {
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return "", false // the real decode reports it
		}
		for k, v := range m {
			if badText(k) || strings.ContainsRune(k, utf8.RuneError) {
				return name, true
			}
			if f, bad := badJSONText(v, join(k)); bad {
				return f, true
			}
		}
	case '[':
		var l []json.RawMessage
		if json.Unmarshal(raw, &l) != nil {
			return "", false
		}
		for i, v := range l {
			if f, bad := badJSONText(v, join(fmt.Sprint(i))); bad {
				return f, true
			}
		}
	case '"':
		var s string
		if !utf8.Valid(raw) || (json.Unmarshal(raw, &s) == nil && strings.IndexByte(s, 0) >= 0) {
			return name, true
		}
	}
	return "", false
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

// pathUUID parses a path parameter; a malformed id is a 404 like an unknown one.
func pathUUID(c *gin.Context, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		return uuid.Nil, errNotFound
	}
	return id, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefBool(b *bool) bool { return b != nil && *b }
