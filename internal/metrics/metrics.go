// Package metrics is what every chat node counts, primary or edge, in a
// Prometheus registry of its own: open connections and slow-client drops
// by transport, deliveries, send→commit latency, active rooms, and Go's
// runtime and process collectors. A node adds its own (the primary its
// commits and checkpoints) to Reg. Every update is an atomic add on a
// handle resolved once, so counting allocates nothing and takes no lock.
//
//	m := metrics.New(func() float64 { return float64(h.Stats().Rooms) })
//	gw := gateway.New(cfg, auth, store, h, m)
//	http.Handle("/api/chat/metrics", m.Handler())
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"pocketchat/internal/gateway"
)

// Namespace starts every metric's name.
const Namespace = "pocketchat"

// Node is one node's registry and its connection-side metrics. A nil
// *Node counts nothing.
type Node struct {
	Reg *prometheus.Registry

	connsNative, connsSocketIO prometheus.Gauge
	dropsNative, dropsSocketIO prometheus.Counter
	deliveries                 prometheus.Counter
	sendCommit                 prometheus.Histogram
}

var _ gateway.Metrics = (*Node)(nil)

// New registers the shared metrics; rooms is read at scrape time.
func New(rooms func() float64) *Node {
	conns := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "connections_open",
		Help: "Open chat connections on this node, by transport (native WebSocket or socket.io).",
	}, []string{"transport"})
	drops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "slow_client_drops_total",
		Help: "Connections closed because their send queue filled up (close 4000), by transport.",
	}, []string{"transport"})
	n := &Node{
		Reg:           prometheus.NewRegistry(),
		connsNative:   conns.WithLabelValues(gateway.TransportNative),
		connsSocketIO: conns.WithLabelValues(gateway.TransportSocketIO),
		dropsNative:   drops.WithLabelValues(gateway.TransportNative),
		dropsSocketIO: drops.WithLabelValues(gateway.TransportSocketIO),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "deliveries_total",
			Help: "Hub events handed to connection queues on this node.",
		}),
		sendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "send_commit_seconds",
			Help:    "Time from a session receiving a send or dm request to its message being committed (on an edge: through the primary).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "rooms_active",
		Help: "Rooms with at least one subscriber on this node.",
	}, rooms)
	n.Reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		conns, drops, active, n.deliveries, n.sendCommit,
	)
	return n
}

// CounterFunc registers a counter read from f at scrape time (a count
// kept elsewhere, such as the cluster broker's dropped events).
func (n *Node) CounterFunc(name, help string, f func() float64) {
	n.Reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, f))
}

// Handler serves the registry in Prometheus' text format; access is the
// caller's to check.
func (n *Node) Handler() http.Handler {
	return promhttp.HandlerFor(n.Reg, promhttp.HandlerOpts{})
}

// Delivered counts one event handed to a connection's queue.
func (n *Node) Delivered() {
	if n != nil {
		n.deliveries.Inc()
	}
}

// Committed observes one send→commit latency.
func (n *Node) Committed(d time.Duration) {
	if n != nil {
		n.sendCommit.Observe(d.Seconds())
	}
}

// Opened and Closed keep the open connections gauge of a transport;
// Closed also counts a slow client's drop.
func (n *Node) Opened(transport string) {
	if n == nil {
		return
	}
	if transport == gateway.TransportSocketIO {
		n.connsSocketIO.Inc()
	} else {
		n.connsNative.Inc()
	}
}

func (n *Node) Closed(transport string, tooSlow bool) {
	if n == nil {
		return
	}
	conns, drops := n.connsNative, n.dropsNative
	if transport == gateway.TransportSocketIO {
		conns, drops = n.connsSocketIO, n.dropsSocketIO
	}
	conns.Dec()
	if tooSlow {
		drops.Inc()
	}
}
