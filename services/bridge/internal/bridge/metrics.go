package bridge

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cefiot/cefiot/libs/service"
	"github.com/cefiot/cefiot/services/bridge/internal/checkpoint"
)

type metrics struct {
	records, bytes, txns, aborts, restarts prometheus.Counter
	commit, open                           prometheus.Histogram
	backlogRecords, backlogBytes           *prometheus.GaugeVec
	gapOffsets                             *prometheus.GaugeVec
	gapsDetected, gapOffsetsDetected       *prometheus.CounterVec
	offsetResets                           *prometheus.CounterVec
	linkUp, paused, rateLimit              prometheus.Gauge
	drainEstimate, throughput              prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	part := []string{"topic", "partition"}
	m := &metrics{
		records:  service.Counter(reg, "cefiot_bridge_records_forwarded_total", "Records committed to the cloud cluster."),
		bytes:    service.Counter(reg, "cefiot_bridge_bytes_forwarded_total", "Key and value bytes committed to the cloud cluster."),
		txns:     service.Counter(reg, "cefiot_bridge_transactions_total", "Committed transactions."),
		aborts:   service.Counter(reg, "cefiot_bridge_transaction_aborts_total", "Transactions that failed and were aborted."),
		restarts: service.Counter(reg, "cefiot_bridge_session_restarts_total", "Forwarding sessions restarted from the committed checkpoints."),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cefiot_bridge_commit_seconds",
			Help: "Transaction commit latency.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		open: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cefiot_bridge_transaction_open_seconds",
			Help:    "How long a cloud transaction stayed open, from its first record to the end of its commit (the transaction timeout bounds it).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20)}),
		backlogRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cefiot_bridge_backlog_records",
			Help: "Records in the edge partition not yet committed to the cloud (lag)."}, part),
		backlogBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cefiot_bridge_backlog_bytes",
			Help: "Estimated bytes in the edge partition not yet committed to the cloud."}, part),
		gapOffsets: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cefiot_bridge_gap_offsets",
			Help: "Offsets of the edge partition lost to retention before they were forwarded, ever (from the checkpoints)."}, part),
		gapsDetected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cefiot_bridge_gaps_detected_total",
			Help: "Gap ranges found and recorded by this process."}, part),
		gapOffsetsDetected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cefiot_bridge_gap_offsets_detected_total",
			Help: "Offsets in gap ranges found and recorded by this process."}, part),
		offsetResets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cefiot_bridge_offset_resets_total",
			Help: "Times an edge partition's offsets went back (topic recreated or truncated): a new epoch, recorded as a gap marker; also counted in cefiot_bridge_gaps_detected_total."}, part),
		linkUp:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "cefiot_bridge_link_up", Help: "1 while the cloud cluster answers, 0 while the WAN is down."}),
		paused:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "cefiot_bridge_paused", Help: "1 while forwarding is paused."}),
		rateLimit:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "cefiot_bridge_rate_limit_bytes_per_second", Help: "Forwarding rate cap; 0 is none."}),
		drainEstimate: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cefiot_bridge_drain_estimate_seconds", Help: "Estimated time to forward the backlog; -1 while unknown."}),
		throughput:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "cefiot_bridge_throughput_bytes_per_second", Help: "Bytes committed per second over the last seconds."}),
	}
	reg.MustRegister(m.commit, m.open, m.backlogRecords, m.backlogBytes, m.gapOffsets, m.gapsDetected, m.gapOffsetsDetected, m.offsetResets,
		m.linkUp, m.paused, m.rateLimit, m.drainEstimate, m.throughput)
	return m
}

func (m *metrics) deletePartition(p checkpoint.Partition) {
	lp := strconv.Itoa(int(p.Partition))
	m.backlogRecords.DeleteLabelValues(p.Topic, lp)
	m.backlogBytes.DeleteLabelValues(p.Topic, lp)
	m.gapOffsets.DeleteLabelValues(p.Topic, lp)
}
