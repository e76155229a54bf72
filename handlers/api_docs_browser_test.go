package handlers

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserAPIDocs renders the API reference in Chromium (screenshots at
// 1280 and 390 px) and checks the phone width does not scroll sideways.
func TestBrowserAPIDocs(t *testing.T) {
	e := newEnv(t)
	ctx := newBrowser(t)
	do(t, ctx, "open the API reference",
		chromedp.Navigate(e.srv.URL+"/docs/api#tag-runtime"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="api-operation"][data-path="/api/v1/agents/{agentId}/status"]`)),
	)
	shoot(t, ctx, "api-docs")
	do(t, ctx, "phone width", chromedp.EmulateViewport(390, 900))
	if wide := value(t, ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)); wide {
		t.Error("the API reference scrolls sideways at 390 px")
	}
}
