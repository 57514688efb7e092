package log

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus collectors the log updates.
type Metrics struct {
	Appended     prometheus.Counter
	CommitErrors prometheus.Counter
	BatchSize    prometheus.Histogram
	Commit       prometheus.Histogram
	Integration  prometheus.Histogram
	TreeSize     prometheus.Gauge
	HTTP         *prometheus.CounterVec
	HTTPLatency  *prometheus.HistogramVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	lat := prometheus.ExponentialBuckets(0.0005, 2, 14) // 0.5 ms .. 4 s
	m := &Metrics{
		Appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custody_events_appended_total", Help: "Events added to the log (duplicates not counted)."}),
		CommitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custody_commit_errors_total", Help: "Batches whose commit to the store failed."}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "custody_batch_size", Help: "New entries per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		Commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "custody_commit_seconds", Help: "Time to commit a batch durably to the store.", Buckets: lat}),
		Integration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "custody_integration_seconds", Help: "Time from submission to receipt (durable, proof built).", Buckets: lat}),
		TreeSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "custody_tree_size", Help: "Size of the newest published checkpoint."}),
		HTTP: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custody_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		HTTPLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "custody_http_request_seconds", Help: "HTTP request latency by route.", Buckets: lat}, []string{"route"}),
	}
	reg.MustRegister(m.Appended, m.CommitErrors, m.BatchSize, m.Commit, m.Integration, m.TreeSize, m.HTTP, m.HTTPLatency)
	return m
}
