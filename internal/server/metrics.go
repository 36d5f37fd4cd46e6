package server

import (
	"crypto/subtle"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"pocketchat/internal/gateway"
	"pocketchat/internal/hub"
	"pocketchat/internal/session"
)

// metrics holds the server's Prometheus registry and the handles its hot
// paths update: each update is an atomic add on a handle resolved here,
// once, so counting allocates nothing and takes no lock. A nil *metrics
// counts nothing.
type metrics struct {
	reg *prometheus.Registry

	connsNative, connsSocketIO prometheus.Gauge
	dropsNative, dropsSocketIO prometheus.Counter
	messagesIn                 prometheus.Counter
	deliveries                 prometheus.Counter
	commitBatch                prometheus.Histogram
	sendCommit                 prometheus.Histogram
	checkpoint                 prometheus.Histogram
}

var _ session.Metrics = (*metrics)(nil)

// newMetrics registers the chat's metrics, and Go's runtime and process
// collectors, on a registry of its own. h is read at scrape time.
func newMetrics(h *hub.Hub) *metrics {
	const ns = "pocketchat"
	conns := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: ns, Name: "connections_open",
		Help: "Open chat connections, by transport (native WebSocket or socket.io).",
	}, []string{"transport"})
	drops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "slow_client_drops_total",
		Help: "Connections closed because their send queue filled up (close 4000), by transport.",
	}, []string{"transport"})
	m := &metrics{
		reg:           prometheus.NewRegistry(),
		connsNative:   conns.WithLabelValues(gateway.TransportNative),
		connsSocketIO: conns.WithLabelValues(gateway.TransportSocketIO),
		dropsNative:   drops.WithLabelValues(gateway.TransportNative),
		dropsSocketIO: drops.WithLabelValues(gateway.TransportSocketIO),
		messagesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "messages_in_total",
			Help: "Messages committed, as seen by the messages create hook (every path: chat, REST, dashboard, bot).",
		}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "deliveries_total",
			Help: "Hub events handed to connection queues.",
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "commit_batch_size",
			Help:    "Messages saved per database commit by the chat's store.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 … 512
		}),
		sendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "send_commit_seconds",
			Help:    "Time from a session receiving a send or dm request to its message being committed.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		checkpoint: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "wal_checkpoint_seconds",
			Help:    "Duration of the background WAL checkpoints (copying committed pages into the database file, with its syncs).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	rooms := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Name: "rooms_active",
		Help: "Rooms with at least one local subscriber.",
	}, func() float64 { return float64(h.Stats().Rooms) })
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		conns, drops, rooms, m.messagesIn, m.deliveries, m.commitBatch, m.sendCommit, m.checkpoint,
	)
	return m
}

// Delivered counts one event handed to a connection's queue (session.Metrics).
func (m *metrics) Delivered() {
	if m != nil {
		m.deliveries.Inc()
	}
}

// Committed observes one send→commit latency (session.Metrics).
func (m *metrics) Committed(d time.Duration) {
	if m != nil {
		m.sendCommit.Observe(d.Seconds())
	}
}

// checkpointed observes one background WAL checkpoint.
func (m *metrics) checkpointed(d time.Duration) {
	if m != nil {
		m.checkpoint.Observe(d.Seconds())
	}
}

// committedBatch observes a commit of n messages.
func (m *metrics) committedBatch(n int) {
	if m != nil {
		m.commitBatch.Observe(float64(n))
	}
}

// messageIn counts a committed message.
func (m *metrics) messageIn() {
	if m != nil {
		m.messagesIn.Inc()
	}
}

// Opened and Closed keep the open connections gauge of a transport;
// closed also counts a slow client's drop, from the close code.
func (m *metrics) Opened(transport string) {
	if m == nil {
		return
	}
	if transport == gateway.TransportSocketIO {
		m.connsSocketIO.Inc()
	} else {
		m.connsNative.Inc()
	}
}

func (m *metrics) Closed(transport string, tooSlow bool) {
	if m == nil {
		return
	}
	conns, drops := m.connsNative, m.dropsNative
	if transport == gateway.TransportSocketIO {
		conns, drops = m.connsSocketIO, m.dropsSocketIO
	}
	conns.Dec()
	if tooSlow {
		drops.Inc()
	}
}

// handleMetrics serves GET /api/chat/metrics in Prometheus' text format
// (behind requireMetricsAccess).
func (s *Server) handleMetrics() func(*core.RequestEvent) error {
	h := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	return func(e *core.RequestEvent) error {
		h.ServeHTTP(e.Response, e.Request)
		return nil
	}
}

// requireMetricsAccess lets a scrape through with the configured
// CHAT_METRICS_TOKEN as a bearer token, else only for superusers
// (PocketBase's own check: 401 without credentials, 403 for others).
func (s *Server) requireMetricsAccess() *hook.Handler[*core.RequestEvent] {
	superusers := apis.RequireSuperuserAuth()
	want := []byte(s.cfg.MetricsToken)
	return &hook.Handler[*core.RequestEvent]{
		Func: func(e *core.RequestEvent) error {
			if len(want) > 0 {
				got, ok := strings.CutPrefix(e.Request.Header.Get("Authorization"), "Bearer ")
				if ok && subtle.ConstantTimeCompare([]byte(got), want) == 1 {
					return e.Next()
				}
			}
			return superusers.Func(e)
		},
	}
}
