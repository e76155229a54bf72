package handlers

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentroster/agentroster/models"
)

// metrics are the server's Prometheus series, in a registry of their own (no
// global state). Labels never carry ids: routes are gin's patterns
// (c.FullPath()), methods and outcomes come from small fixed sets.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	loginFailed prometheus.Counter
	keyFailed   prometheus.Counter
	rateLimited *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
}

const metricsNS = "agentroster"

func newMetrics(h *Handler) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "http_requests_total",
			Help: "HTTP requests by route pattern, method and status class.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNS, Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		loginFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "login_failures_total", Help: "Failed operator sign-ins (wrong email or password).",
		}),
		keyFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "api_key_failures_total", Help: "Requests with an unknown, disabled, revoked or expired API key.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "rate_limited_total", Help: "Requests refused with 429, by limiter.",
		}, []string{"limiter"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "notification_deliveries_total",
			Help: "Webhook delivery attempts by outcome (delivered, failed: will retry, gave_up: no retries left).",
		}, []string{"outcome"}),
	}
	for _, o := range []string{"delivered", "failed", "gave_up"} {
		m.deliveries.WithLabelValues(o)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.loginFailed, m.keyFailed, m.rateLimited, m.deliveries,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNS, Name: "sse_streams_open", Help: "Live update (SSE) streams open on this server.",
		}, func() float64 { return float64(h.broker.Streams()) }),
	)
	if h.db != nil {
		m.reg.MustRegister(collectors.NewDBStatsCollector(h.db.DB, metricsNS), &gaugeCollector{h: h})
	}
	return m
}

// knownMethods keeps the method label to a fixed set.
var knownMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}

// observe records one finished request under its route pattern.
func (m *metrics) observe(c *gin.Context, took time.Duration) {
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	method := c.Request.Method
	if !knownMethods[method] {
		method = "other"
	}
	class := strconv.Itoa(c.Writer.Status()/100) + "xx"
	if c.Writer.Status() == statusClientClosed {
		class = "client_closed" // the client hung up: neither its error nor ours
	}
	m.requests.WithLabelValues(route, method, class).Inc()
	m.duration.WithLabelValues(route, method).Observe(took.Seconds())
}

// limiterRejected counts a 429 from limiter name.
func (m *metrics) limiterRejected(name string) func() {
	c := m.rateLimited.WithLabelValues(name)
	return func() { c.Inc() }
}

// gaugeCollector reads the database-backed gauges at scrape time.
type gaugeCollector struct{ h *Handler }

var (
	agentsDesc = prometheus.NewDesc(metricsNS+"_agents", "Agents by status and presence.", []string{"status", "presence"}, nil)
	joinsDesc  = prometheus.NewDesc(metricsNS+"_join_requests_pending", "Join requests awaiting a decision.", nil, nil)
	invDesc    = prometheus.NewDesc(metricsNS+"_invites_active", "Invites not revoked, expired or spent.", nil, nil)
	queueDesc  = prometheus.NewDesc(metricsNS+"_notifications_queued", "Webhook deliveries waiting to be sent.", nil, nil)
	scrapeDesc = prometheus.NewDesc(metricsNS+"_gauges_up", "1 when the database gauges could be read at this scrape.", nil, nil)
)

func (g *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{agentsDesc, joinsDesc, invDesc, queueDesc, scrapeDesc} {
		ch <- d
	}
}

func (g *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(g.h.ctx, 3*time.Second)
	defer cancel()
	v, err := models.ReadGauges(ctx, g.h.db, g.h.cfg.PresenceWindow)
	if err != nil {
		g.h.log.Warn("metrics: read gauges", "err", err)
		ch <- prometheus.MustNewConstMetric(scrapeDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(scrapeDesc, prometheus.GaugeValue, 1)
	counts := map[[2]string]int{}
	for _, s := range []string{models.StatusPending, models.StatusApproved, models.StatusStopped} {
		counts[[2]string{s, "online"}], counts[[2]string{s, "offline"}] = 0, 0
	}
	for _, a := range v.Agents {
		p := "offline"
		if a.Online {
			p = "online"
		}
		counts[[2]string{a.Status, p}] += a.Count
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	ch <- prometheus.MustNewConstMetric(joinsDesc, prometheus.GaugeValue, float64(v.PendingJoinRequests))
	ch <- prometheus.MustNewConstMetric(invDesc, prometheus.GaugeValue, float64(v.ActiveInvites))
	ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(v.PendingNotifications))
}

// metricsEndpoint serves /metrics on the main listener, and only behind
// `Authorization: Bearer METRICS_TOKEN`: the gauges count every tenant's
// agents. Without a token, or when METRICS_ADDR moves metrics to a listener
// of their own, it answers 404 like any unknown path.
func (h *Handler) metricsEndpoint() gin.HandlerFunc {
	serve := h.metricsServer()
	return func(c *gin.Context) {
		want := h.cfg.MetricsToken
		if want == "" || h.cfg.MetricsAddr != "" {
			h.fail(c, errNotFound)
			return
		}
		scheme, got, _ := strings.Cut(c.GetHeader("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(want)) != 1 {
			c.Header("WWW-Authenticate", `Bearer realm="metrics"`)
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": gin.H{"code": "unauthorized", "message": "metrics need the METRICS_TOKEN bearer token"}})
			return
		}
		serve.ServeHTTP(c.Writer, c.Request)
	}
}

// metricsServer writes the Prometheus text format, never cached.
func (h *Handler) metricsServer() http.Handler {
	serve := promhttp.HandlerFor(h.metrics.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		serve.ServeHTTP(w, r)
	})
}

// MetricsHandler serves GET /metrics without a token, for the METRICS_ADDR
// listener (keep it on a private address); any other path is a 404.
func (h *Handler) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h.metricsServer())
	return mux
}
