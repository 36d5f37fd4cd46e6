package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one measured connection: a receiver in its room, and a sender
// if it is one of the room's first Senders connections.
type conn struct {
	idx  int
	room int
	user benchUser
	src  net.IP // local address to connect from

	srcIdx int // which of the source addresses

	readerDone chan struct{} // closed when nothing reads for the connection any more (or open failed)
	doneOnce   sync.Once
	closing    atomic.Bool // the tool is closing the connection

	// The connection itself: a WebSocket (native) or the SSE request's
	// cancel function (pocketbase-realtime).
	wsc  *wsConn
	stop context.CancelFunc

	// Set while opening, before the reader goroutine starts.
	held bool

	// Owned by the reader goroutine until readerDone is closed.
	got      []Delivery
	lastRecv int64  // arrival of the last delivery
	others   int64  // message events that are not this run's
	closedBy string // why the server ended the connection, if it did

	snd *sender // nil for receive-only connections
}

// sender is the sending side of a connection.
type sender struct {
	planned int
	text    []byte // reused buffer for the message text
	body    []byte // reused buffer for the frame or request body

	sent     atomic.Int64 // messages sent
	answered atomic.Int64 // acks and error replies
	acked    atomic.Int64
	stopped  atomic.Bool // the sending goroutine has finished

	// Owned by the goroutine that sees the answers (native: the reader;
	// pocketbase-realtime: the sending goroutine) until the run ends.
	ackOK   []bool  // ackOK[i]: message i+1 was acked
	ackLat  []int64 // send → ack, ns
	lastAck int64
	errs    map[string]int64 // error replies by code / HTTP status

	// Owned by the sending goroutine.
	sendFailed string // why sending stopped early, if it did
	slotWaits  int64  // sends that had to wait for an -inflight slot
}

// driver is what differs between the modes.
type driver interface {
	// open connects c, joins (or subscribes to) its room and starts the
	// goroutine that reads c's events until close. Whatever happens,
	// c.readerDone is closed once nothing reads for c any more. The
	// connection outlives ctx (which only bounds the set-up); it ends with
	// close or when the run's context ends.
	open(ctx context.Context, b *bench, c *conn) error
	// send sends message sseq of sender c, stamped with due (the time it
	// was due, in bench.now units), under an -inflight slot the caller
	// took. native returns once the frame is written (the reader sees the
	// ack and frees the slot); pocketbase-realtime once the create request
	// is answered, the slot freed. On an error the slot is the caller's
	// to free.
	send(ctx context.Context, b *bench, c *conn, sseq int, due int64) error
	// close ends c's connection, which ends its reader.
	close(c *conn)
}

// bench is one run in progress.
type bench struct {
	cfg   Config
	ctx   context.Context // the run's: connections end with it
	base  string          // http://host:port
	run   string          // run id, in room names and message texts
	epoch time.Time
	logf  func(string, ...any)

	api   *api
	users *userCache

	// A cluster's edges (-spawn-edges): their base URLs and their APIs,
	// signed in as the superuser for their metrics. Empty on one node.
	edges    []string
	edgeAPIs []*api
	// procs are the server's processes, for the CPU figures; holders the
	// pids of those that hold the connections, for the memory figures.
	procs   []proc
	holders []int

	rooms []string // room ids
	conns []*conn

	// received counts deliveries for the drain. Readers add to it in
	// batches (when their read buffer runs dry), not per delivery: with
	// 20,000 connections, summing per-connection counters every tick
	// cost more than the deliveries.
	received atomic.Int64
	// slots holds a token per message in flight under -inflight (nil: no
	// limit). A sender takes one before sending; the answer gives it back.
	slots chan struct{}
}

// acquire takes an -inflight slot, waiting until deadline at most; false
// if none came in time (or the run ended).
func (b *bench) acquire(ctx context.Context, deadline time.Time) bool {
	if b.slots == nil {
		return true
	}
	select {
	case b.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case b.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// release gives n slots back: one per answered message.
func (b *bench) release(n int) {
	if b.slots == nil {
		return
	}
	for range n {
		select {
		case <-b.slots:
		default:
			return
		}
	}
}

// readerFinished closes readerDone, once, and frees the -inflight slots
// of c's messages that will not be answered now (b nil: the tool closed
// the connection and frees nothing).
func (c *conn) readerFinished(b *bench) {
	c.doneOnce.Do(func() {
		if s := c.snd; s != nil && b != nil {
			b.release(int(max(0, s.sent.Load()-s.answered.Load())))
		}
		close(c.readerDone)
	})
}

// now is the time since the tool started, monotonic, in ns.
func (b *bench) now() int64 { return int64(time.Since(b.epoch)) }

// wsURL is c's native chat endpoint: the server's or, in a cluster, an
// edge's. A room's members take the edges in turn (c is member slot
// idx div Rooms of its room), so every room spans the edges and its
// deliveries cross Redis.
func (b *bench) wsURL(c *conn) string {
	base := b.base
	if n := len(b.edges); n > 0 {
		base = b.edges[(c.idx/b.cfg.Rooms)%n]
	}
	u, _ := url.Parse(base)
	u.Scheme = "ws"
	u.Path = "/api/chat/ws"
	return u.String()
}

// Run runs one scenario and returns its result.
func Run(ctx context.Context, cfg Config, logf func(string, ...any)) (*Result, error) {
	return run(ctx, cfg, logf, nil)
}

// run is Run with a cache of signed-in users (nil: sign everyone in).
func run(ctx context.Context, cfg Config, logf func(string, ...any), users *userCache) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := checkFileLimit(cfg); err != nil {
		return nil, err
	}
	res := &Result{Name: cfg.Name, Mode: cfg.Mode, Config: cfg, Machine: machineInfo(), Started: time.Now().UTC()}
	res.Config.SuperPassword = ""
	res.FileLimit = fileLimit()

	var srv *spawned
	var cl *spawnedCluster
	switch {
	case cfg.Spawn != "" && cfg.Edges > 0:
		var err error
		if cl, err = spawnCluster(ctx, cfg, logf); err != nil {
			return nil, err
		}
		defer cl.stop()
		srv = cl.primary
	case cfg.Spawn != "":
		var err error
		srv, err = spawn(ctx, cfg.Spawn, cfg.SpawnDir, cfg.SpawnHooks, cfg.SpawnEnv, cfg.SuperEmail, cfg.SuperPassword, logf)
		if err != nil {
			return nil, err
		}
		defer srv.stop()
	}
	if srv != nil {
		cfg.URL = srv.url
		if cfg.PID == 0 {
			cfg.PID = srv.pid()
		}
		res.Config.URL = cfg.URL
	}
	base, err := loopbackBase(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Sources > 1 && net.ParseIP(hostOf(base)).To4() == nil {
		return nil, fmt.Errorf("-sources > 1 needs an IPv4 target (127.0.0.x source addresses)")
	}
	b := &bench{cfg: cfg, ctx: ctx, users: users, base: base, run: newRunID(), epoch: time.Now(), logf: logf, api: newAPI(base)}
	if cfg.Inflight > 0 {
		b.slots = make(chan struct{}, cfg.Inflight)
	}
	res.RunID = b.run
	if err := b.findServer(res); err != nil {
		logf("%v: no CPU or memory figures", err)
	}
	b.procs, b.holders = []proc{{rolePrimary, res.PID}}, []int{res.PID}
	if cl != nil {
		b.edges, b.procs, b.holders = cl.edgeURLs(), cl.procs(), nil
		for _, e := range cl.edges {
			b.holders = append(b.holders, e.pid())
		}
	}

	var d driver
	if cfg.Mode == ModeRealtime {
		d = newRealtime(b)
	} else {
		p, err := newPoller(&b.received, b.epoch)
		if err != nil {
			return nil, err
		}
		defer p.close()
		d = &native{poller: p}
	}
	// Counting and removing the rooms still happen when the run was cut
	// short (timeout, Ctrl-C), within their own bound, which starts when
	// they do.
	afterCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	}
	if err := b.setup(ctx, res, d); err != nil {
		b.cleanup(d)
		if !cfg.Keep && len(b.rooms) > 0 {
			after, cancelAfter := afterCtx()
			_ = b.api.deleteRooms(after, b.rooms)
			cancelAfter()
		}
		return nil, err
	}
	stopProfile := func() {}
	if cfg.CPUProfile != "" {
		if stopProfile, err = startCPUProfile(cfg.CPUProfile); err != nil {
			b.cleanup(d)
			return nil, err
		}
	}
	if cfg.Senders == 0 {
		b.hold(ctx, res)
	} else {
		b.measure(ctx, res, d)
	}
	stopProfile()
	b.cleanup(d)
	after, cancelAfter := afterCtx()
	defer cancelAfter()
	if err := b.finish(after, res); err != nil {
		return nil, err
	}
	if cl != nil {
		if tail := cl.problems(); tail != "" {
			res.Notes = append(res.Notes, "cluster output: "+tail)
		}
	} else if srv != nil {
		if tail := srv.problems(); tail != "" {
			res.Notes = append(res.Notes, "server output: "+tail)
		}
	}
	return res, nil
}

// sourceIP is the i-th source address, 127.0.0.(i+1).
func sourceIP(i int) net.IP { return net.IPv4(127, 0, 0, byte(1+i)) }

func hostOf(base string) string {
	u, _ := url.Parse(base)
	return u.Hostname()
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// findServer finds the server's process for CPU and memory figures.
func (b *bench) findServer(res *Result) error {
	res.PID = b.cfg.PID
	if res.PID == 0 {
		port, _ := strconv.Atoi(portOf(b.base))
		pid, err := findPidByPort(port)
		if err != nil {
			return err
		}
		res.PID = pid
	}
	if _, err := readCPUTicks(res.PID); err != nil {
		res.PID = 0
		return fmt.Errorf("server process: %w", err)
	}
	return nil
}

func portOf(base string) string {
	u, _ := url.Parse(base)
	return u.Port()
}

// setup signs the users in, creates the rooms and opens every connection.
func (b *bench) setup(ctx context.Context, res *Result, d driver) error {
	cfg := b.cfg
	if err := b.api.superLogin(ctx, cfg.SuperEmail, cfg.SuperPassword); err != nil {
		return err
	}
	for _, e := range b.edges {
		a := newAPI(e)
		a.super = b.api.super // an edge asks the primary about the token
		b.edgeAPIs = append(b.edgeAPIs, a)
	}
	if cfg.Spawn != "" {
		// The server is the tool's own: its users post through REST far
		// faster than PocketBase's HTTP rate limiter lets one address.
		// A server of someone else's keeps its settings.
		if err := b.api.exemptLoopback(ctx); err != nil {
			return err
		}
	}
	t := time.Now()
	b.logf("getting tokens for %d users", cfg.Users)
	users, created, err := b.api.ensureUsers(ctx, cfg.Users, userOptions{
		workers:    cfg.AuthWorkers,
		signupCost: b.signupCost(),
		cache:      b.users,
		logf:       b.logf,
	})
	if err != nil {
		return err
	}
	res.UsersCreated = created
	res.UsersSec = time.Since(t).Seconds()
	b.logf("users ready in %.1fs (%d created)", res.UsersSec, created)

	// Room i's members are users i·M … i·M+M-1 (mod Users).
	members := make([][]string, cfg.Rooms)
	for i := range members {
		for j := range cfg.Members {
			members[i] = append(members[i], users[(i*cfg.Members+j)%cfg.Users].ID)
		}
	}
	b.logf("creating %d rooms of %d members (run %s)", cfg.Rooms, cfg.Members, b.run)
	b.rooms, err = b.api.createRooms(ctx, b.run, members)
	if err != nil {
		return err
	}

	// Connection k is in room k mod R, as member (k div R) mod M; the
	// first Senders connections of each room send.
	per := cfg.perSender()
	v6 := net.ParseIP(hostOf(b.base)).To4() == nil
	b.conns = make([]*conn, cfg.Conns)
	for k := range b.conns {
		room, slot := k%cfg.Rooms, k/cfg.Rooms
		c := &conn{idx: k, room: room, readerDone: make(chan struct{})}
		c.user = users[(room*cfg.Members+slot%cfg.Members)%cfg.Users]
		c.srcIdx = sourceIndex(k, cfg.Sources)
		c.src = sourceIP(c.srcIdx)
		if v6 {
			c.src = net.IPv6loopback
		}
		if cfg.Senders > 0 {
			// Room for every message of the room: no growing while
			// deliveries stream in.
			c.got = make([]Delivery, 0, per*cfg.Senders+8)
		}
		if slot < cfg.Senders {
			c.snd = &sender{planned: per, ackOK: make([]bool, per), ackLat: make([]int64, 0, per), errs: map[string]int64{}}
		}
		b.conns[k] = c
	}

	res.RSSBeforeKB = b.rss()
	heap0, heapOK := b.heapInUse(ctx)
	t = time.Now()
	b.logf("opening %d %s connections from %d source address(es)", cfg.Conns, cfg.Mode, cfg.Sources)
	var opened, failed atomic.Int64
	var firstErr error
	var mu sync.Mutex
	_ = parallel(ctx, len(b.conns), cfg.DialWorkers, func(ctx context.Context, k int) error {
		c := b.conns[k]
		if err := d.open(ctx, b, c); err != nil {
			failed.Add(1)
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("connection %d: %w", k, err)
			}
			mu.Unlock()
			return nil
		}
		if n := opened.Add(1); n%2000 == 0 {
			b.logf("connections: %d/%d", n, cfg.Conns)
		}
		return nil
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res.ConnectSec = time.Since(t).Seconds()
	res.ConnsHeld = int(opened.Load())
	res.ConnsFailed = int(failed.Load())
	res.SourcesUsed = sourcesUsed(b.conns)
	if firstErr != nil {
		b.logf("%d connections failed; first: %v", res.ConnsFailed, firstErr)
		res.Notes = append(res.Notes, fmt.Sprintf("%d connections failed to open; first: %v", res.ConnsFailed, firstErr))
	}
	if res.ConnsHeld == 0 {
		return fmt.Errorf("no connection opened: %v", firstErr)
	}
	b.logf("%d connections open in %.1fs", res.ConnsHeld, res.ConnectSec)
	time.Sleep(300 * time.Millisecond) // let the server settle before reading its memory
	res.RSSAfterKB = b.rss()
	if heap1, ok := b.heapInUse(ctx); ok && heapOK {
		res.HeapBeforeKB, res.HeapAfterKB = heap0/1024, heap1/1024
	}
	return nil
}

// signupCost is the bcrypt cost for the users this run creates: lowered
// only on a server the tool started itself (see Config.SignupCost).
func (b *bench) signupCost() int {
	if b.cfg.Spawn == "" {
		return 0
	}
	return b.cfg.SignupCost
}

// sourceIndex spreads connections over the source addresses round-robin,
// so every address gets the same share and each room's members come from
// several addresses.
func sourceIndex(k, sources int) int { return k % max(sources, 1) }

// sourcesUsed counts the source addresses of the connections that opened.
func sourcesUsed(conns []*conn) int {
	seen := map[int]bool{}
	for _, c := range conns {
		if c.held {
			seen[c.srcIdx] = true
		}
	}
	return len(seen)
}

// hold is the measured phase of an idle run (no senders): the
// connections sit for the duration, then the server's memory is read
// again, after its garbage collector had time to run.
func (b *bench) hold(ctx context.Context, res *Result) {
	b.logf("holding %d connections for %s", res.ConnsHeld, b.cfg.Duration)
	meter := startCPUMeter(b.procs)
	start := time.Now()
	t := time.NewTimer(b.cfg.Duration)
	select {
	case <-ctx.Done():
		res.Notes = append(res.Notes, "stopped: "+context.Cause(ctx).Error())
	case <-t.C:
	}
	t.Stop()
	res.MeasuredSec = time.Since(start).Seconds()
	meter.stop(res)
	if rss := b.rss(); rss > 0 {
		res.RSSAfterKB = rss
	}
	if heap, ok := b.heapInUse(ctx); ok && res.HeapAfterKB > 0 {
		res.HeapAfterKB = heap / 1024
	}
}

// measure runs the senders and waits for every answer and delivery.
func (b *bench) measure(ctx context.Context, res *Result, d driver) {
	cfg := b.cfg
	var senders []*conn
	for _, c := range b.conns {
		if c.snd != nil && c.held {
			senders = append(senders, c)
		}
	}
	if cfg.Burst > 0 {
		b.logf("%d senders: a burst of %d messages each", len(senders), cfg.Burst)
	} else {
		b.logf("%d senders: %g messages/s each for %s", len(senders), cfg.Rate, cfg.Duration)
	}
	heldIn := make([]int64, cfg.Rooms)
	for _, c := range b.conns {
		if c.held {
			heldIn[c.room]++
		}
	}

	m0, metricsOK := b.serverMetrics(ctx)
	meter := startCPUMeter(b.procs)
	start := time.Now()
	sendStart := b.now()
	var wg sync.WaitGroup
	for j, c := range senders {
		offset := time.Duration(0)
		if cfg.Burst == 0 {
			offset = time.Duration(float64(time.Second) / cfg.Rate * float64(j) / float64(len(senders)))
		}
		wg.Go(func() { b.sendLoop(ctx, d, c, start, offset) })
	}

	// Drain: wait until every sender stopped and got all its answers and
	// every connection got every acked message of its room, or until
	// Drain after the last sender stopped.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var drainFrom time.Time
	var lastLog time.Time
loop:
	for {
		allStopped, answered := true, true
		var expected int64
		for _, c := range senders {
			s := c.snd
			if !s.stopped.Load() {
				allStopped = false
			}
			if s.answered.Load() < s.sent.Load() {
				answered = false
			}
			expected += s.acked.Load() * heldIn[c.room]
		}
		got := b.received.Load()
		if allStopped && drainFrom.IsZero() {
			drainFrom = time.Now()
		}
		if allStopped && answered && got >= expected {
			break loop
		}
		if !drainFrom.IsZero() && time.Since(drainFrom) > cfg.Drain {
			b.logf("drain: gave up after %s (%d of %d deliveries)", cfg.Drain, got, expected)
			res.Notes = append(res.Notes, fmt.Sprintf("gave up waiting %s after the senders stopped: %d of %d deliveries, answers complete: %v", cfg.Drain, got, expected, answered))
			break loop
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			b.logf("sending: %d/%d deliveries so far", got, expected)
		}
		select {
		case <-ctx.Done():
			res.Notes = append(res.Notes, "stopped: "+context.Cause(ctx).Error())
			break loop
		case <-tick.C:
		}
	}
	wg.Wait()
	res.MeasuredSec = time.Since(start).Seconds()
	meter.stop(res)
	if m1, ok := b.serverMetrics(ctx); ok && metricsOK {
		res.Server = m1.since(m0)
	}
	for _, c := range senders {
		res.SlotWaits += c.snd.slotWaits
	}
	res.sendStart = sendStart
}

// cpuMeter measures where the CPU time of the measured phase went: the
// server's processes, the tool, the kernel's softirq and steal,
// everything else.
type cpuMeter struct {
	procs            []proc
	server           []int64 // each process's ticks at the start
	self             int64
	stat             cpuStat
	serverOK, statOK bool
}

func startCPUMeter(procs []proc) *cpuMeter {
	m := &cpuMeter{procs: procs, serverOK: len(procs) > 0}
	for _, p := range procs {
		t, err := readCPUTicks(p.pid)
		m.serverOK = m.serverOK && p.pid != 0 && err == nil
		m.server = append(m.server, t)
	}
	m.self, _ = readCPUTicks(0)
	var err error
	m.stat, err = readCPUStat()
	m.statOK = err == nil
	return m
}

// stop fills res's CPU figures: ServerCPUSec is all the server's
// processes together, CPUByRole each role's share.
func (m *cpuMeter) stop(res *Result) {
	var server int64
	byRole := map[string]int64{}
	serverOK := m.serverOK
	for i, p := range m.procs {
		t, err := readCPUTicks(p.pid)
		serverOK = serverOK && err == nil
		server += t - m.server[i]
		byRole[p.role] += t - m.server[i]
	}
	self, _ := readCPUTicks(0)
	stat, statErr := readCPUStat()
	hz := float64(clockTicks())
	res.ToolCPUSec = float64(self-m.self) / hz
	if !serverOK {
		return
	}
	res.ServerCPUSec = float64(server) / hz
	res.CPUByRole = map[string]float64{}
	for role, t := range byRole {
		res.CPUByRole[role] = float64(t) / hz
	}
	if !m.statOK || statErr != nil {
		return
	}
	// What else ran on the machine meanwhile: the figures are only
	// comparable when this stays small.
	softirq, steal := stat.SoftIRQ-m.stat.SoftIRQ, stat.Steal-m.stat.Steal
	res.SoftIRQSec, res.StealSec = float64(softirq)/hz, float64(steal)/hz
	// Softirq ticks are also charged to the process they interrupted
	// (tick accounting), so they are not taken out of "other": what is
	// left of them there ran in no process of the run (ksoftirqd, idle).
	other := (stat.Busy - m.stat.Busy) - server - (self - m.self) - steal
	res.OtherCPUSec = float64(max(0, other)) / hz
	if res.OtherCPUSec > 0.1*res.MeasuredSec {
		res.Notes = append(res.Notes, fmt.Sprintf("other processes used %.2f CPU-seconds during the %.1f s measured phase: "+
			"the machine was not quiet", res.OtherCPUSec, res.MeasuredSec))
	}
	if res.StealSec > 0.1*res.MeasuredSec {
		res.Notes = append(res.Notes, fmt.Sprintf("the hypervisor took %.1f CPU-seconds (steal) during the %.1f s measured phase",
			res.StealSec, res.MeasuredSec))
	}
}

// rss is the resident memory of the processes holding the connections
// (the server, or a cluster's edges), in kB; 0 if unknown.
func (b *bench) rss() int64 {
	var sum int64
	for _, pid := range b.holders {
		kb := readRSSKB(pid)
		if kb == 0 {
			return 0
		}
		sum += kb
	}
	return sum
}

// heapInUse is the Go heap and stacks in use of the processes holding
// the connections, in bytes.
func (b *bench) heapInUse(ctx context.Context) (int64, bool) {
	if len(b.edgeAPIs) == 0 {
		return b.api.heapInUse(ctx)
	}
	var sum int64
	for _, a := range b.edgeAPIs {
		n, ok := a.heapInUse(ctx)
		if !ok {
			return 0, false
		}
		sum += n
	}
	return sum, true
}

// serverMetrics scrapes the server's counters, a cluster's summed over
// the primary (commits) and the edges (slow-client drops); ok is false
// if an endpoint does not answer (an older server, or one without the
// chat).
func (b *bench) serverMetrics(ctx context.Context) (serverMetrics, bool) {
	sum, ok := b.api.metrics(ctx)
	if !ok {
		return serverMetrics{}, false
	}
	for _, a := range b.edgeAPIs {
		v, ok := a.metrics(ctx)
		if !ok {
			return serverMetrics{}, false
		}
		for k, x := range v {
			sum[k] += x
		}
	}
	return metricsOf(sum), true
}

// sendLoop sends c's messages: all at once for a burst, else at the rate
// until the duration is over (a sender that falls behind catches up, but
// sends nothing after the end).
//
// A message's latency counts from when it was due: in a burst, when the
// sender got to it; at a rate, its scheduled time (see stamp). So a
// sender held back (by -inflight, or by a server that answers slowly in
// pocketbase-realtime mode) shows the wait in the latencies instead of
// hiding it.
func (b *bench) sendLoop(ctx context.Context, d driver, c *conn, start time.Time, offset time.Duration) {
	s := c.snd
	defer s.stopped.Store(true)
	cfg := b.cfg
	take := func(deadline time.Time) bool {
		if b.slots == nil {
			return true
		}
		select {
		case b.slots <- struct{}{}:
			return true
		default:
		}
		s.slotWaits++
		return b.acquire(ctx, deadline)
	}
	if cfg.Burst > 0 {
		for i := 1; i <= s.planned && ctx.Err() == nil; i++ {
			// A slot that does not come within -drain means answers
			// stopped coming: give up rather than wait for the timeout.
			if !take(time.Now().Add(cfg.Drain)) {
				s.sendFailed = "no -inflight slot freed within -drain"
				return
			}
			if err := d.send(ctx, b, c, i, b.now()); err != nil {
				b.release(1)
				s.sendFailed = err.Error()
				return
			}
		}
		return
	}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	end := start.Add(cfg.Duration)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := 1; i <= s.planned; i++ {
		at := start.Add(offset + time.Duration(i-1)*interval)
		if !at.Before(end) || !time.Now().Before(end) {
			return
		}
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		if !take(end) {
			return
		}
		if err := d.send(ctx, b, c, i, b.stamp(int64(at.Sub(b.epoch)))); err != nil {
			b.release(1)
			s.sendFailed = err.Error()
			return
		}
	}
}

// timerSlack is how late a sender may wake for its scheduled time and
// still count the message from when it is sent.
const timerSlack = 5 * time.Millisecond

// stamp is the send time to put in a message due at due (bench.now
// units): now, if the sender is on time; else due. A timer firing a
// little late (the tool's own scheduling, up to a millisecond on a busy
// machine) is not the server's doing; a sender held back longer is
// behind because of the server, and that wait counts.
func (b *bench) stamp(due int64) int64 {
	now := b.now()
	if now-due <= int64(timerSlack) {
		return now
	}
	return due
}

// cleanup closes every connection and waits for the readers.
func (b *bench) cleanup(d driver) {
	for _, c := range b.conns {
		if c.held {
			d.close(c)
		}
	}
	timeout := time.After(15 * time.Second)
	for _, c := range b.conns {
		select {
		case <-c.readerDone:
		case <-timeout:
			b.logf("some readers did not stop")
			return
		}
	}
}

// finish counts what was stored, removes the rooms and does the accounting.
func (b *bench) finish(ctx context.Context, res *Result) error {
	counts, err := b.api.countMessages(ctx, b.rooms)
	if err != nil {
		return err
	}
	for _, n := range counts {
		res.Persisted += n
	}
	if !b.cfg.Keep {
		b.logf("deleting the run's %d rooms", len(b.rooms))
		if err := b.api.deleteRooms(ctx, b.rooms); err != nil {
			res.Notes = append(res.Notes, "deleting the bench rooms: "+err.Error())
		}
	}

	roomOf := make([]int, len(b.conns))
	acked := make([][]bool, len(b.conns))
	got := make([][]Delivery, len(b.conns))
	var nGot, nAcks int
	for _, c := range b.conns {
		nGot += len(c.got)
		if c.snd != nil {
			nAcks += len(c.snd.ackLat)
		}
	}
	lats, ackLats := make([]int64, 0, nGot), make([]int64, 0, nAcks)
	var lastRecv, lastAck int64
	res.SendErrors = map[string]int64{}
	res.Planned = int64(b.cfg.Rooms) * int64(b.cfg.Senders) * int64(b.cfg.perSender())
	for k, c := range b.conns {
		roomOf[k] = -1
		if !c.held {
			continue
		}
		roomOf[k] = c.room
		got[k] = c.got
		res.Others += c.others
		lastRecv = max(lastRecv, c.lastRecv)
		for _, dl := range c.got {
			lats = append(lats, dl.Lat)
		}
		if c.closedBy != "" {
			res.ConnsDropped++
			res.DropReasons = appendOnce(res.DropReasons, c.closedBy)
		}
		s := c.snd
		if s == nil {
			continue
		}
		sent := int(s.sent.Load())
		acked[k] = s.ackOK[:sent]
		res.Sent += int64(sent)
		res.Acked += s.acked.Load()
		ackLats = append(ackLats, s.ackLat...)
		lastAck = max(lastAck, s.lastAck)
		for code, n := range s.errs {
			res.SendErrors[code] += n
			res.Failed += n
		}
		if s.sendFailed != "" {
			res.SendErrors["send: "+s.sendFailed]++
		}
	}
	res.Outcome = Account(roomOf, acked, got)
	res.Delivery = Summarize(lats)
	res.Ack = Summarize(ackLats)
	if lastRecv > res.sendStart {
		res.DeliverySec = float64(lastRecv-res.sendStart) / 1e9
		res.DeliveriesPerSec = float64(res.Received) / res.DeliverySec
	}
	if lastAck > res.sendStart {
		res.AckSec = float64(lastAck-res.sendStart) / 1e9
		res.AckedPerSec = float64(res.Acked) / res.AckSec
		res.PersistedPerSec = float64(res.Persisted) / res.AckSec
	}
	if res.ServerCPUSec > 0 {
		res.DeliveriesPerCPUSec = float64(res.Received) / res.ServerCPUSec
	}
	if res.RSSBeforeKB > 0 && res.RSSAfterKB > 0 && res.ConnsHeld > 0 {
		res.MemPerConnKB = float64(res.RSSAfterKB-res.RSSBeforeKB) / float64(res.ConnsHeld)
		if res.MemPerConnKB < 0 {
			res.Notes = append(res.Notes, "the server's RSS fell while connecting (memory of earlier work went back to the OS): "+
				"memory per connection needs a freshly started server (-spawn)")
		}
	}
	if res.HeapAfterKB > 0 && res.ConnsHeld > 0 {
		res.HeapPerConnKB = float64(res.HeapAfterKB-res.HeapBeforeKB) / float64(res.ConnsHeld)
	}
	return nil
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
