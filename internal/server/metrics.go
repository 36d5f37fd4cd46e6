package server

import (
	"crypto/subtle"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/prometheus/client_golang/prometheus"

	"pocketchat/internal/hub"
	chatmetrics "pocketchat/internal/metrics"
)

// metrics is the primary's registry: what every node counts
// (metrics.Node, which the gateway updates) and the database's side,
// commits and checkpoints. A nil *metrics counts nothing.
type metrics struct {
	node *chatmetrics.Node

	messagesIn  prometheus.Counter
	commitBatch prometheus.Histogram
	checkpoint  prometheus.Histogram
}

// newMetrics registers the chat's metrics on a registry of their own. h
// is read at scrape time.
func newMetrics(h *hub.Hub) *metrics {
	const ns = chatmetrics.Namespace
	m := &metrics{
		node: chatmetrics.New(func() float64 { return float64(h.Stats().Rooms) }),
		messagesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "messages_in_total",
			Help: "Messages committed, as seen by the messages create hook (every path: chat, REST, dashboard, bot, edges).",
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "commit_batch_size",
			Help:    "Messages saved per database commit by the chat's store.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 … 512
		}),
		checkpoint: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "wal_checkpoint_seconds",
			Help:    "Duration of the background WAL checkpoints (copying committed pages into the database file, with its syncs).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	m.node.Reg.MustRegister(m.messagesIn, m.commitBatch, m.checkpoint)
	return m
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

// handleMetrics serves GET /api/chat/metrics in Prometheus' text format
// (behind requireMetricsAccess).
func (s *Server) handleMetrics() func(*core.RequestEvent) error {
	h := s.metrics.node.Handler()
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
