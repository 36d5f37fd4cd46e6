package main

import (
	"fmt"
	"strings"
)

// clusterCosts are the medians of one scenario's cluster runs, and of its
// one-node runs beside them, as costs per unit of work.
type clusterCosts struct {
	scenario string
	messages float64 // persisted
	deliver  float64 // deliveries received
	single   float64 // one node: server CPU-seconds
	primary  float64 // cluster: the primary's CPU-seconds
	edges    float64 // all edges' CPU-seconds
	redis    float64
	sec      float64 // the measured phase
	edgeN    int
}

// background is what a cluster's processes spend per second of an idle
// run (connections held, nobody sending): heartbeats, presence, pings.
type background struct {
	primary, edges, redis float64 // CPU-seconds per second
	conns                 int
}

// backgroundOf is the idle scenario's cluster run as background, or zero
// without one.
func (d *suiteDoc) backgroundOf() background {
	for _, sc := range d.scenarios {
		cl := d.results[suiteKey(sc.name, kindCluster)]
		if len(cl) == 0 || cl[0].Config.Senders != 0 {
			continue
		}
		known := func(r *Result) bool { return r.CPUByRole != nil && r.MeasuredSec > 0 }
		per := func(role string) float64 {
			v, _ := medianOf(cl, func(r *Result) float64 { return r.CPUByRole[role] / r.MeasuredSec }, known)
			return v
		}
		return background{primary: per(rolePrimary), edges: per(roleEdges), redis: per(roleRedis), conns: cl[0].ConnsHeld}
	}
	return background{}
}

// costsOf gathers the cluster costs of the scenarios where a cluster and
// one node both ran with senders and CPU figures.
func (d *suiteDoc) costsOf() []clusterCosts {
	var out []clusterCosts
	for _, sc := range d.scenarios {
		nat, cl := d.results[suiteKey(sc.name, ModeNative)], d.results[suiteKey(sc.name, kindCluster)]
		if len(nat) == 0 || len(cl) == 0 || cl[0].Config.Senders == 0 {
			continue
		}
		hasRoles := func(r *Result) bool { return r.CPUByRole != nil && r.Persisted > 0 }
		c := clusterCosts{scenario: sc.name, edgeN: cl[0].Config.Edges}
		var ok [7]bool
		c.messages, ok[0] = medianOf(cl, func(r *Result) float64 { return float64(r.Persisted) }, hasRoles)
		c.deliver, ok[1] = medianOf(cl, func(r *Result) float64 { return float64(r.Received) }, hasRoles)
		c.primary, ok[2] = medianOf(cl, func(r *Result) float64 { return r.CPUByRole[rolePrimary] }, hasRoles)
		c.edges, ok[3] = medianOf(cl, func(r *Result) float64 { return r.CPUByRole[roleEdges] }, hasRoles)
		c.redis, ok[4] = medianOf(cl, func(r *Result) float64 { return r.CPUByRole[roleRedis] }, hasRoles)
		c.sec, ok[6] = medianOf(cl, func(r *Result) float64 { return r.MeasuredSec }, hasRoles)
		// One node's CPU per message, scaled to the cluster's count.
		perMsg, ok5 := medianOf(nat, func(r *Result) float64 { return r.ServerCPUSec / float64(r.Persisted) }, func(r *Result) bool {
			return r.PID != 0 && r.ServerCPUSec > 0 && r.Persisted > 0
		})
		c.single, ok[5] = perMsg*c.messages, ok5
		if ok == [7]bool{true, true, true, true, true, true, true} && c.messages > 0 && c.deliver > 0 {
			out = append(out, c)
		}
	}
	return out
}

// perMessage fits cost = x·messages over the scenarios (least squares):
// a role's CPU-seconds per message, its background taken out first.
func perMessage(cs []clusterCosts, cost func(clusterCosts) float64) float64 {
	var mm, mc float64
	for _, c := range cs {
		mm += c.messages * c.messages
		mc += c.messages * cost(c)
	}
	if mm == 0 {
		return 0
	}
	return mc / mm
}

// fitEdges splits the edges' CPU time, their background taken out, into
// a part per message (every edge hears every room's events on the one
// channel, and forwards its own senders' messages to the primary) and a
// part per delivery (writing to its sockets): the least-squares fit of
// edges = a·messages + b·deliveries over the scenarios, in seconds. ok is
// false when the scenarios do not pin both down (too few, too alike, or
// a fit below 0).
func fitEdges(cs []clusterCosts, bg background) (perMsg, perDelivery float64, ok bool) {
	var mm, md, dd, me, de float64
	for _, c := range cs {
		e := c.edges - bg.edges*c.sec
		mm += c.messages * c.messages
		md += c.messages * c.deliver
		dd += c.deliver * c.deliver
		me += c.messages * e
		de += c.deliver * e
	}
	det := mm*dd - md*md
	if len(cs) < 2 || det <= 1e-9*mm*dd {
		return 0, 0, false
	}
	a := (me*dd - de*md) / det
	b := (mm*de - md*me) / det
	return a, b, a > 0 && b > 0
}

// scalingMarkdown is the "Scaling out" section: where the cluster's CPU
// went per message and per delivery, and what that means past this
// machine. Empty without cluster results.
func (d *suiteDoc) scalingMarkdown() string {
	cs := d.costsOf()
	if len(cs) == 0 {
		return ""
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	us := func(sec, per float64) string { return thousands(sec/per*1e6, 1) + " µs" }
	p("## Scaling out\n\n")
	p("The cluster runs put Redis, the primary, %d edges and the load tool on the same %d cores, so their\n", cs[0].edgeN, d.cpus())
	p("rates and latencies above are this machine's, with every message taking more hops than on one node:\n")
	p("they show that the cluster delivers everything, in order, not how fast it goes on machines of its own.\n")
	p("What carries over is where the CPU goes. Medians of the cluster runs, with one node's CPU per message\n")
	p("beside them:\n\n")
	p("| scenario | deliveries per message | one node: CPU per message | cluster: primary per message | edges: their CPU ÷ deliveries | Redis per message | primary's share of the cluster's CPU |\n")
	p("|---|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range cs {
		total := c.primary + c.edges + c.redis
		p("| %s | %s | %s | %s | %s | %s | %.0f%% |\n", c.scenario, thousands(c.deliver/c.messages, 0),
			us(c.single, c.messages), us(c.primary, c.messages), us(c.edges, c.deliver), us(c.redis, c.messages), 100*c.primary/total)
	}
	p("\nIn the lighter runs the background below (heartbeats, presence, pings), spread over few messages,\n")
	p("makes up most of these figures.\n\n")

	bg := d.backgroundOf()
	if bg.conns > 0 {
		p("Idle, with %s connections held and nobody sending, the cluster spent %s ms of CPU per second on the\n", thousands(float64(bg.conns), 0), thousands(bg.primary*1000, 1))
		p("primary, %s ms on the edges together and %s ms in Redis (heartbeats, presence, pings). The\n", thousands(bg.edges*1000, 1), thousands(bg.redis*1000, 1))
		p("estimates below take that out of each run and fit what is left over the scenarios (least squares,\n")
		p("so the busiest runs weigh most).\n\n")
	} else {
		p("The estimates below fit each role's CPU time over the scenarios (least squares, so the busiest runs\n")
		p("weigh most); without the idle run, the background (heartbeats, presence, pings) stays in them.\n\n")
	}
	primaryPerMsg := perMessage(cs, func(c clusterCosts) float64 { return c.primary - bg.primary*c.sec })
	redisPerMsg := perMessage(cs, func(c clusterCosts) float64 { return c.redis - bg.redis*c.sec })
	singlePerMsg := perMessage(cs, func(c clusterCosts) float64 { return c.single })
	edgeN := float64(cs[0].edgeN)
	perMsgAll, perDelivery, fit := fitEdges(cs, bg)
	perEdgeMsg := perMsgAll / edgeN
	usec := func(sec float64) string { return thousands(sec*1e6, 1) + " µs" }

	p("**What grows with edges.** Connections and fan-out live on the edges: they hold the sockets and\n")
	p("write every delivery. ")
	if fit {
		p("Their CPU fits %s per delivery plus %s per message and edge (here every room has\n", usec(perDelivery), usec(perEdgeMsg))
		p("members on every edge: each edge hears the message from Redis and encodes its frame, and the sender's edge\n")
		p("forwards it to the primary in a batch and acks it), so an edge core writes about %s deliveries/s", thousands(1/perDelivery, 0))
	} else {
		var e, dl float64
		for _, c := range cs {
			e += c.edges - bg.edges*c.sec
			dl += c.deliver
		}
		p("They spent %s per delivery over the scenarios (their time ÷ deliveries; the scenarios\n", usec(e/dl))
		p("did not separate the cost per message from the cost per delivery)")
	}
	if mem, ok := d.idleClusterMemory(); ok {
		p(", and a connection takes %s KiB of an edge's memory (idle run, RSS)", thousands(mem, 1))
	}
	p(". Both grow with the number of edges: more edges, more clients and more members per room.\n\n")

	p("**What stays on the primary, and where the next limit is.** These costs do not shrink as edges are\n")
	p("added:\n\n")
	type limit struct {
		what string
		rate float64
	}
	var limits []limit
	if primaryPerMsg > 0 {
		p("- *The primary saves every message*: %s of CPU per message in the cluster, against %s per message\n", usec(primaryPerMsg), usec(singlePerMsg))
		p("  for one node that also writes the deliveries. A primary with 2 cores of its own would save about\n")
		p("  %s messages/s. Every message takes the one SQLite write path (group commit batches it), so past\n", thousands(2/primaryPerMsg, 0))
		p("  that the answer is a faster primary, not more edges.\n")
		limits = append(limits, limit{"the primary's saving", 2 / primaryPerMsg})
	}
	if redisPerMsg > 0 {
		p("- *Redis carries every event on one channel*: %s of Redis CPU per message; Redis runs its\n", usec(redisPerMsg))
		p("  commands on one thread, so one core relays about %s messages/s. It writes each event to every\n", thousands(1/redisPerMsg, 0))
		p("  node subscribed (%d here: the primary and the edges), so each edge added lowers that.\n", cs[0].edgeN+1)
		limits = append(limits, limit{"Redis' one channel", 1 / redisPerMsg})
	}
	if hear, ok := d.microMetric("BenchmarkBrokerHear/members=0", "cpu-ns/op"); ok && hear > 0 {
		perHear := hear / 1e9
		p("- *Every edge hears every message*: all events share one Redis channel, so an edge reads and decodes\n")
		p("  every message of the cluster, also those of rooms none of its clients is in: %s of CPU each\n", usec(perHear))
		p("  (`cluster` `BrokerHear/members=0` in the micro-benchmarks), half a core at about %s messages/s.\n", thousands(0.5/perHear, 0))
		p("  A channel per room or per shard of rooms would lift this; the design does not do that yet.\n")
		limits = append(limits, limit{"every edge hearing every message (half a core per edge)", 0.5 / perHear})
	} else if fit {
		p("- *Every edge hears every message*: all events share one Redis channel, so an edge reads and decodes\n")
		p("  every message of the cluster, also those of rooms none of its clients is in. The micro-benchmark that\n")
		p("  measures that alone did not run; the %s per message and edge above, which also holds forwarding,\n", usec(perEdgeMsg))
		p("  bounds it: half a core hears at least %s messages/s.\n", thousands(0.5/perEdgeMsg, 0))
		limits = append(limits, limit{"every edge hearing every message (half a core per edge, at the least)", 0.5 / perEdgeMsg})
	}
	p("\n")
	if len(limits) > 0 {
		first := limits[0]
		for _, l := range limits[1:] {
			if l.rate < first.rate {
				first = l
			}
		}
		p("The first of these to bind is %s, at about %s messages/s: %.1f× the 10,000 messages/s of\n", first.what, thousands(first.rate, 0), first.rate/10_000)
		p("Tier B. Until then deliveries and connections, the part that grows with members and clients, scale\n")
		p("with the edges. These are estimates from runs where every process shared %d cores with the others\n", d.cpus())
		p("and with the load tool; on machines of their own each process would have its cores to itself.\n\n")
	}
	return b.String()
}

// idleClusterMemory is the edges' memory per connection in the idle
// scenario's cluster run (median), if it ran.
func (d *suiteDoc) idleClusterMemory() (float64, bool) {
	for _, sc := range d.scenarios {
		cl := d.results[suiteKey(sc.name, kindCluster)]
		if len(cl) > 0 && cl[0].Config.Senders == 0 {
			return medianOf(cl, func(r *Result) float64 { return r.MemPerConnKB }, func(r *Result) bool { return r.RSSBeforeKB > 0 && r.RSSAfterKB > 0 })
		}
	}
	return 0, false
}

// cpus is the machine's core count from the first result found.
func (d *suiteDoc) cpus() int {
	for _, rs := range d.results {
		if len(rs) > 0 && rs[0].Machine.CPUs > 0 {
			return rs[0].Machine.CPUs
		}
	}
	return 0
}

// microMetric is the median of one micro-benchmark's metric, if it ran.
func (d *suiteDoc) microMetric(name, unit string) (float64, bool) {
	for _, mb := range d.micro {
		if mb.Name == name {
			if xs := mb.Samples[unit]; len(xs) > 0 {
				return median(xs), true
			}
		}
	}
	return 0, false
}
