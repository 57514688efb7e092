package httpapi

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus collectors of the HTTP API.
type Metrics struct {
	// HTTP counts requests by route and status code.
	HTTP *prometheus.CounterVec
	// HTTPLatency is the request latency by route.
	HTTPLatency *prometheus.HistogramVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	lat := prometheus.ExponentialBuckets(0.0005, 2, 14) // 0.5 ms .. 4 s, as the log's
	m := &Metrics{
		HTTP: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custody_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		HTTPLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "custody_http_request_seconds", Help: "HTTP request latency by route.", Buckets: lat}, []string{"route"}),
	}
	reg.MustRegister(m.HTTP, m.HTTPLatency)
	return m
}
