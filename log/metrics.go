package log

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus collectors the log updates (the HTTP API
// has its own: httpapi.Metrics).
type Metrics struct {
	Appended     prometheus.Counter
	CommitErrors prometheus.Counter
	BatchSize    prometheus.Histogram
	Commit       prometheus.Histogram
	Integration  prometheus.Histogram
	TreeSize     prometheus.Gauge

	// WitnessRequests counts add-checkpoint requests by witness (key name)
	// and status code ("error" when no answer came).
	WitnessRequests *prometheus.CounterVec
	// WitnessLatency is the latency of add-checkpoint requests by witness.
	WitnessLatency *prometheus.HistogramVec
	// WitnessQuorumFailures counts checkpoints the quorum did not cosign.
	WitnessQuorumFailures prometheus.Counter
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
		WitnessRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custody_witness_requests_total", Help: "add-checkpoint requests to witnesses by witness and status code (\"error\": no answer)."}, []string{"witness", "code"}),
		WitnessLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "custody_witness_seconds", Help: "add-checkpoint request latency by witness.", Buckets: lat}, []string{"witness"}),
		WitnessQuorumFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custody_witness_quorum_failures_total", Help: "Checkpoints not published because the witness quorum did not cosign them."}),
	}
	reg.MustRegister(m.Appended, m.CommitErrors, m.BatchSize, m.Commit, m.Integration, m.TreeSize,
		m.WitnessRequests, m.WitnessLatency, m.WitnessQuorumFailures)
	return m
}
