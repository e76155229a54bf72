package handlers

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// dom is an HTML page or fragment parsed for assertions by CSS selector.
type dom struct {
	*goquery.Document
}

// parseHTML parses body as browsers do. A fragment that starts with a table
// row (what an htmx row action answers) is parsed inside a <tbody>, where
// its <tr> and <td> elements are kept.
func parseHTML(t testing.TB, body string) dom {
	t.Helper()
	if strings.HasPrefix(strings.TrimSpace(body), "<tr") {
		tbody := &html.Node{Type: html.ElementNode, Data: "tbody", DataAtom: atom.Tbody}
		nodes, err := html.ParseFragment(strings.NewReader(body), tbody)
		if err != nil {
			t.Fatalf("parse HTML fragment: %v", err)
		}
		for _, n := range nodes {
			tbody.AppendChild(n)
		}
		return dom{goquery.NewDocumentFromNode(tbody)}
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	return dom{doc}
}

// has reports whether any element matches the CSS selector sel.
func (d dom) has(sel string) bool { return d.Find(sel).Length() > 0 }

// count is how many elements match sel.
func (d dom) count(sel string) int { return d.Find(sel).Length() }

// text is the text of the elements matching sel, markup removed.
func (d dom) text(sel string) string { return d.Find(sel).Text() }

// hasText reports whether the text of the document, markup removed, holds s.
func (d dom) hasText(s string) bool { return strings.Contains(d.Text(), s) }

// attr is the attribute name of the first element matching sel, "" when no
// element matches or it has no such attribute.
func (d dom) attr(sel, name string) string {
	v, _ := d.Find(sel).Attr(name)
	return v
}

// withText is how many elements match sel and have exactly the text s,
// surrounding white space aside.
func (d dom) withText(sel, s string) int {
	return d.Find(sel).FilterFunction(func(_ int, e *goquery.Selection) bool { return strings.TrimSpace(e.Text()) == s }).Length()
}
