package handlers

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/agentroster/agentroster/views"
)

// The parts of an OpenAPI 3 document the reference page shows.
type oaDoc struct {
	Info struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	} `json:"info"`
	Tags []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"tags"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Description string `json:"description"`
		} `json:"securitySchemes"`
		Parameters    map[string]oaParam       `json:"parameters"`
		Responses     map[string]oaResponse    `json:"responses"`
		RequestBodies map[string]oaRequestBody `json:"requestBodies"`
		Schemas       map[string]*oaSchema     `json:"schemas"`
	} `json:"components"`
}

type oaOperation struct {
	Tags        []string              `json:"tags"`
	OperationID string                `json:"operationId"`
	Summary     string                `json:"summary"`
	Description string                `json:"description"`
	Security    []map[string][]string `json:"security"`
	Parameters  []oaParam             `json:"parameters"`
	RequestBody *oaRequestBody        `json:"requestBody"`
	Responses   map[string]oaResponse `json:"responses"`
}

type oaParam struct {
	Ref         string    `json:"$ref"`
	Name        string    `json:"name"`
	In          string    `json:"in"`
	Required    bool      `json:"required"`
	Description string    `json:"description"`
	Schema      *oaSchema `json:"schema"`
}

type oaMedia struct {
	Schema  *oaSchema       `json:"schema"`
	Example json.RawMessage `json:"example"`
}

type oaRequestBody struct {
	Ref         string             `json:"$ref"`
	Description string             `json:"description"`
	Content     map[string]oaMedia `json:"content"`
}

type oaResponse struct {
	Ref         string             `json:"$ref"`
	Description string             `json:"description"`
	Content     map[string]oaMedia `json:"content"`
}

type oaSchema struct {
	Ref         string               `json:"$ref"`
	Type        string               `json:"type"`
	Format      string               `json:"format"`
	Description string               `json:"description"`
	Nullable    bool                 `json:"nullable"`
	Enum        []any                `json:"enum"`
	Items       *oaSchema            `json:"items"`
	Properties  map[string]*oaSchema `json:"properties"`
	Required    []string             `json:"required"`
	Pattern     string               `json:"pattern"`
}

var apiDocs struct {
	once sync.Once
	page views.APIDoc
	err  error
}

// apiDocsPage serves GET /docs/api: the OpenAPI document as a plain page.
func (h *Handler) apiDocsPage(c *gin.Context) {
	apiDocs.once.Do(func() { apiDocs.page, apiDocs.err = buildAPIDoc(openAPIDocument) })
	if apiDocs.err != nil {
		h.fail(c, apiDocs.err)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	h.render(c, views.APIDocPage(apiDocs.page))
}

// buildAPIDoc turns the OpenAPI document into the reference page's data:
// operations grouped by tag in document order of the tags, then schemas.
func buildAPIDoc(raw []byte) (views.APIDoc, error) {
	var d oaDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return views.APIDoc{}, err
	}
	out := views.APIDoc{Title: d.Info.Title, Version: d.Info.Version, Intro: d.Info.Description}
	for _, name := range sortedKeys(d.Components.SecuritySchemes) {
		out.Security = append(out.Security, views.APISecurity{Name: name, Description: d.Components.SecuritySchemes[name].Description})
	}
	group := map[string]int{}
	for _, t := range d.Tags {
		group[t.Name] = len(out.Groups)
		out.Groups = append(out.Groups, views.APIGroup{Name: t.Name, Description: t.Description})
	}
	for _, path := range sortedKeys(d.Paths) {
		for _, method := range []string{"get", "post", "put", "patch", "delete"} {
			rawOp, ok := d.Paths[path][method]
			if !ok {
				continue
			}
			var op oaOperation
			if err := json.Unmarshal(rawOp, &op); err != nil {
				return out, err
			}
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			i, ok := group[tag]
			if !ok {
				i = len(out.Groups)
				group[tag] = i
				out.Groups = append(out.Groups, views.APIGroup{Name: tag})
			}
			out.Groups[i].Operations = append(out.Groups[i].Operations, d.operation(strings.ToUpper(method), path, op))
		}
	}
	for _, name := range sortedKeys(d.Components.Schemas) {
		s := d.Components.Schemas[name]
		vs := views.APISchema{Name: name, Description: s.Description, Type: typeOf(s), Enum: enumText(s.Enum)}
		for _, prop := range sortedKeys(s.Properties) {
			p := s.Properties[prop]
			vs.Fields = append(vs.Fields, views.APIField{
				Name: prop, Type: typeOf(p), Required: slices.Contains(s.Required, prop),
				Description: p.Description, Enum: enumText(p.Enum),
			})
		}
		out.Schemas = append(out.Schemas, vs)
	}
	return out, nil
}

func (d *oaDoc) operation(method, path string, op oaOperation) views.APIOperation {
	vo := views.APIOperation{ID: op.OperationID, Method: method, Path: path, Summary: op.Summary, Description: op.Description}
	for _, req := range op.Security {
		for _, name := range sortedKeys(req) {
			vo.Auth = append(vo.Auth, name)
		}
	}
	for _, p := range op.Parameters {
		if p.Ref != "" {
			p = d.Components.Parameters[refName(p.Ref)]
		}
		vo.Params = append(vo.Params, views.APIParam{
			Name: p.Name, In: p.In, Required: p.Required, Type: typeOf(p.Schema), Description: p.Description,
		})
	}
	if rb := op.RequestBody; rb != nil {
		if rb.Ref != "" {
			*rb = d.Components.RequestBodies[refName(rb.Ref)]
		}
		if m, ok := rb.Content["application/json"]; ok {
			vo.Body = &views.APIBody{Type: typeOf(m.Schema), Example: indentJSON(m.Example)}
		}
	}
	for _, status := range sortedKeys(op.Responses) {
		r := op.Responses[status]
		if r.Ref != "" {
			r = d.Components.Responses[refName(r.Ref)]
		}
		vr := views.APIResponse{Status: status, Description: r.Description}
		if m, ok := r.Content["application/json"]; ok {
			vr.Type = typeOf(m.Schema)
			vr.Example = indentJSON(m.Example)
		}
		vo.Responses = append(vo.Responses, vr)
	}
	return vo
}

func refName(ref string) string { return ref[strings.LastIndex(ref, "/")+1:] }

// typeOf describes a schema in a few words, linking to a named schema.
func typeOf(s *oaSchema) views.APIType {
	if s == nil {
		return views.APIType{Text: "any"}
	}
	var t views.APIType
	switch {
	case s.Ref != "":
		t = views.APIType{Ref: refName(s.Ref)}
	case s.Type == "array":
		item := typeOf(s.Items)
		t = views.APIType{Text: "array of " + item.Text, Ref: item.Ref}
	case s.Type == "":
		t = views.APIType{Text: "any"}
	default:
		t = views.APIType{Text: s.Type}
		if s.Format != "" {
			t.Text += " (" + s.Format + ")"
		}
	}
	if s.Nullable {
		t.Suffix = " or null"
	}
	return t
}

func enumText(values []any) []string {
	out := make([]string, len(values))
	for i, v := range values {
		b, _ := json.Marshal(v)
		out[i] = string(b)
	}
	return out
}

func indentJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return ""
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
