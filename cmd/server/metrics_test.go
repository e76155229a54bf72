package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestMetricsListener: with METRICS_ADDR the metrics are served there without
// a token and nowhere on the main listener, and the metrics listener closes
// with the server at SIGTERM.
func TestMetricsListener(t *testing.T) {
	r := newFaultRig(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := l.Addr().String()
	l.Close()
	r.env = []string{"METRICS_ADDR=" + metricsAddr, "METRICS_TOKEN="}
	r.start()

	get := func(url string) (int, string) {
		t.Helper()
		resp, err := faultClient.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get("http://" + metricsAddr + "/metrics"); status != http.StatusOK || !strings.Contains(body, "agentroster_agents") {
		t.Fatalf("metrics listener: %d\n%.300s", status, body)
	}
	if status, _ := get("http://" + metricsAddr + "/login"); status != http.StatusNotFound {
		t.Fatalf("metrics listener serves /login: %d", status)
	}
	if status, body := get(r.base + "/metrics"); status != http.StatusNotFound || strings.Contains(body, "agentroster_agents") {
		t.Fatalf("main listener /metrics with METRICS_ADDR set: %d, want 404", status)
	}

	r.cmd.Process.Signal(os.Interrupt)
	if err := r.wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, r.logs)
	}
	if c, err := net.Dial("tcp", metricsAddr); err == nil {
		c.Close()
		t.Fatal("metrics listener still open after shutdown")
	}
}

func TestMetricsAddrConfig(t *testing.T) {
	t.Setenv("METRICS_ADDR", "not an address")
	if _, err := loadConfig(nil); err == nil || !strings.Contains(err.Error(), "METRICS_ADDR") {
		t.Fatalf("bad METRICS_ADDR: %v", err)
	}
	t.Setenv("METRICS_ADDR", "127.0.0.1:9090")
	c, err := loadConfig(nil)
	if err != nil || c.MetricsAddr != "127.0.0.1:9090" {
		t.Fatalf("METRICS_ADDR: %+v %v", c.MetricsAddr, err)
	}
	t.Setenv("ADDR", "127.0.0.1:9090")
	if _, err := loadConfig(nil); err == nil {
		t.Fatal("METRICS_ADDR equal to ADDR accepted")
	}
}
