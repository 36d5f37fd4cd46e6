// Command chatbench is pocketchat's load tool: it drives a running
// pocketchat on this machine with many connections in many rooms, checks
// every delivery (nothing lost, nothing twice, everything in order) and
// reports throughput, latency and what the server spent in CPU and memory.
//
//	chatbench -url http://127.0.0.1:8090 -su-email admin@example.com -su-password '…' \
//	    -rooms 50 -members 10 -rate 2 -duration 20s
//	chatbench -spawn bin/pocketchat -mode pocketbase-realtime -rooms 1 -members 200 -senders 4 -burst 50
//	chatbench -spawn bin/pocketchat -spawn-env CHAT_COMMIT_BATCH=1 -rooms 200 -members 5 -rate 25 -duration 20s
//	chatbench -spawn bin/pocketchat -spawn-edges 2 -rooms 50 -members 10 -rate 2 -duration 20s
//	chatbench suite -bin bin/pocketchat -out docs/benchmarks.md
//
// Two modes run the same scenario. native (the default) uses pocketchat's
// WebSocket endpoint: every connection joins its room, senders send over
// it and the ack tells the message was committed. pocketbase-realtime does
// what a plain PocketBase app would: every connection is a subscriber of
// PocketBase's SSE /api/realtime with a filter on its room, and senders
// create records with REST (a 2xx answer is the ack).
//
// With -spawn-edges N the server is a cluster on this machine: Redis, the
// primary and N edges. Native connections are spread over the edges, a
// room's members in turn, so every room spans the edges; the CPU figures
// add up all the cluster's processes and show each role's share.
//
// Users (bench-00042@bench.invalid, a fixed password) are reused between
// runs: the superuser finds those that exist and impersonates them (a
// token without a password hash), and creates only the missing ones.
// Rooms (bench-<run>-<i>, private, with their members) are created by the
// superuser for each run and deleted at the end with their messages
// (-keep keeps them). Native connections are read by a few epoll workers
// (poller.go), not a goroutine each, and frames are scanned for the few
// fields the accounting needs instead of decoded: the tool holds 20,000
// connections and takes as little as it can of the cores it shares with
// the server. The tool only talks to 127.0.0.1 or ::1, and every
// count and duration is bounded, so it always stops by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Modes.
const (
	ModeNative   = "native"
	ModeRealtime = "pocketbase-realtime"
)

// Bounds on a scenario, so a typo cannot take the machine down.
const (
	maxUsers       = 100_000
	maxRooms       = 100_000
	maxMembers     = 10_000 // the schema's limit on rooms.members
	maxConns       = 500_000
	maxConnsPerSrc = 28_000 // ephemeral ports per source address, with a margin
	maxRate        = 1000   // messages per second per sender
	maxDuration    = 10 * time.Minute
	maxBurst       = 10_000
	maxMessages    = 2_000_000  // planned messages in a run
	maxDeliveries  = 50_000_000 // planned deliveries in a run (24 bytes each are kept)
	maxTimeout     = time.Hour
	maxEdges       = 8
)

// Config is one scenario and where to run it.
type Config struct {
	Mode string // ModeNative or ModeRealtime
	Name string // a label for reports
	URL  string // the server's base URL; 127.0.0.1 or ::1 only

	Users   int     // accounts to use; 0 means Rooms × Members (everyone in one room)
	Rooms   int     // rooms created for the run
	Members int     // members of each room, taken round-robin from the users
	Conns   int     // connections; 0 means Rooms × Members; connection k is in room k mod Rooms
	Senders int     // sending connections per room (the first ones of each room); 0: an idle run
	Rate    float64 // messages per second of each sender, for Duration
	Burst   int     // if > 0: each sender sends this many messages at once instead
	// Inflight bounds the messages sent and not yet answered, over all
	// senders (0: no bound). It keeps a run against an overloaded server
	// bounded: without it, a server that commits 700 messages/s under an
	// offered 10,000 would face a backlog of minutes once the senders
	// stop.
	Inflight int

	Duration time.Duration // how long senders send at Rate; with no senders, how long the connections sit
	Drain    time.Duration // how long to wait for missing acks and deliveries after the senders stop
	Timeout  time.Duration // hard limit on the whole run

	Sources     int // source addresses 127.0.0.1…127.0.0.N for the connections; 0 picks enough
	AuthWorkers int // concurrent sign-ins and sign-ups (password hashing is slow)
	DialWorkers int // concurrent connection set-ups

	SuperEmail    string // superuser who creates rooms and counts messages
	SuperPassword string
	// SignupCost is the bcrypt cost of the users collection's passwords
	// while the tool creates missing bench users, on a server it started
	// itself (-spawn) only; the old cost is put back afterwards. 0 leaves
	// it alone.
	SignupCost int

	PID  int  // the server's pid for CPU and memory; 0 finds it by the port
	Keep bool // keep the rooms and their messages
	JSON string

	Spawn      string // a pocketchat binary to start for this run (then URL is ignored)
	SpawnDir   string // its data directory; empty means a temporary one
	SpawnHooks string // CHAT_HOOKS_DIR for it; empty leaves the server's default
	// SpawnEnv is more of its environment, "KEY=VALUE" each, after the
	// tool's own (and CHAT_HOOKS_DIR): a later entry for a key wins.
	SpawnEnv []string
	// Edges, with Spawn, makes the run's server a cluster on this
	// machine: a redis-server, the spawned binary as the primary and this
	// many `pocketchat edge` processes (with SpawnEnv too). The native
	// connections go to the edges, so deliveries cross Redis; set-up and
	// counting stay at the primary.
	Edges int

	Quiet      bool
	CPUProfile string // write the tool's own CPU profile of the measured phase here
}

// Defaults for the superuser the tool creates when it spawns the server.
const (
	defaultSuperEmail    = "chatbench@bench.invalid"
	defaultSuperPassword = "chatbench-superuser-1"
)

// newFlagSet binds a FlagSet to c, with the defaults.
func newFlagSet(name string, c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.Mode, "mode", ModeNative, "native (pocketchat's WebSocket) or pocketbase-realtime (SSE subscribers, REST senders)")
	fs.StringVar(&c.Name, "name", "", "a label for the report")
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8090", "the server's base URL (127.0.0.1 or ::1 only)")
	fs.IntVar(&c.Users, "users", 0, "accounts to use (0 = rooms × members)")
	fs.IntVar(&c.Rooms, "rooms", 10, "rooms to create")
	fs.IntVar(&c.Members, "members", 10, "members per room")
	fs.IntVar(&c.Conns, "conns", 0, "connections, spread over the rooms (0 = rooms × members)")
	fs.IntVar(&c.Senders, "senders", 1, "sending connections per room (0: connections only sit for -duration, for memory figures)")
	fs.Float64Var(&c.Rate, "rate", 1, "messages per second per sender")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long senders send")
	fs.IntVar(&c.Burst, "burst", 0, "each sender sends this many messages at once (instead of -rate for -duration)")
	fs.IntVar(&c.Inflight, "inflight", 0, "at most this many messages sent and unanswered, over all senders (0 = no limit)")
	fs.DurationVar(&c.Drain, "drain", 15*time.Second, "how long to wait for missing acks and deliveries after sending")
	fs.DurationVar(&c.Timeout, "timeout", 15*time.Minute, "hard limit on the whole run")
	fs.IntVar(&c.Sources, "sources", 0, "source addresses 127.0.0.1…127.0.0.N (0 = enough for -conns)")
	fs.IntVar(&c.AuthWorkers, "auth-workers", 8, "concurrent requests while getting the users' tokens (impersonation, sign-ups)")
	fs.IntVar(&c.DialWorkers, "dial-workers", 32, "concurrent connection set-ups")
	fs.StringVar(&c.SuperEmail, "su-email", defaultSuperEmail, "superuser email (rooms, counting)")
	fs.StringVar(&c.SuperPassword, "su-password", defaultSuperPassword, "superuser password")
	fs.IntVar(&c.SignupCost, "signup-cost", 4, "with -spawn: bcrypt cost of the users' passwords while missing bench users are created (0 = the server's own)")
	fs.IntVar(&c.PID, "pid", 0, "the server's process id (0 = find it by the listening port)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the bench rooms and their messages")
	fs.StringVar(&c.JSON, "json", "", "also write the result as JSON to this file")
	fs.StringVar(&c.Spawn, "spawn", "", "start this pocketchat binary on a free port for the run (serve --dev=false)")
	fs.StringVar(&c.SpawnDir, "spawn-dir", "", "data directory for -spawn (default: a temporary one)")
	fs.StringVar(&c.SpawnHooks, "spawn-hooks", "", "CHAT_HOOKS_DIR for -spawn")
	fs.Var((*envList)(&c.SpawnEnv), "spawn-env", "`KEY=VALUE` in the environment of the -spawn server (repeatable; a later one for the same key wins)")
	fs.IntVar(&c.Edges, "spawn-edges", 0, "with -spawn: start a cluster instead of one server: a redis-server, the binary as the primary and this many edges, "+
		"with the native connections spread over the edges (0 = one server)")
	fs.BoolVar(&c.Quiet, "q", false, "no progress on stderr")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write the tool's CPU profile of the measured phase (sending and receiving) to this file")
	return fs
}

// parseConfig reads a scenario from command-line arguments.
func parseConfig(args []string, stderr io.Writer) (Config, error) {
	var c Config
	fs := newFlagSet("chatbench", &c)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c.fill()
	return c, c.validate()
}

// fill replaces zero values that depend on others.
func (c *Config) fill() {
	if c.Users == 0 {
		c.Users = c.Rooms * c.Members
	}
	if c.Conns == 0 {
		c.Conns = c.Rooms * c.Members
	}
	if c.Sources == 0 {
		c.Sources = max(1, (c.Conns+c.Senders*c.Rooms+maxConnsPerSrc-1)/maxConnsPerSrc)
	}
	if c.Name == "" {
		c.Name = fmt.Sprintf("%d rooms × %d", c.Rooms, c.Members)
	}
}

// validate checks the bounds.
func (c *Config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Mode == ModeNative || c.Mode == ModeRealtime, "-mode must be %s or %s", ModeNative, ModeRealtime)
	check(c.Rooms >= 1 && c.Rooms <= maxRooms, "-rooms must be 1…%d", maxRooms)
	check(c.Members >= 1 && c.Members <= maxMembers, "-members must be 1…%d", maxMembers)
	check(c.Users >= c.Members && c.Users <= maxUsers, "-users must be -members…%d", maxUsers)
	check(c.Conns >= c.Rooms && c.Conns <= maxConns, "-conns must be -rooms…%d", maxConns)
	check(c.Senders >= 0 && c.Senders <= c.Conns/max(c.Rooms, 1), "-senders must be 0…conns per room (%d)", c.Conns/max(c.Rooms, 1))
	check(c.Inflight >= 0 && c.Inflight <= maxMessages, "-inflight must be 0…%d", maxMessages)
	check(c.SignupCost == 0 || c.SignupCost >= 4 && c.SignupCost <= 31, "-signup-cost must be 0 or 4…31 (bcrypt's range)")
	check(c.Sources >= 1 && c.Sources <= 254, "-sources must be 1…254")
	check(c.Conns+c.Senders*c.Rooms <= c.Sources*maxConnsPerSrc, "%d connections need -sources ≥ %d", c.Conns, (c.Conns+c.Senders*c.Rooms+maxConnsPerSrc-1)/maxConnsPerSrc)
	check(c.Burst >= 0 && c.Burst <= maxBurst, "-burst must be 0…%d", maxBurst)
	if c.Burst == 0 || c.Senders == 0 {
		check(c.Duration > 0 && c.Duration <= maxDuration, "-duration must be in (0, %s]", maxDuration)
	}
	if c.Burst == 0 && c.Senders > 0 {
		check(c.Rate > 0 && c.Rate <= maxRate, "-rate must be in (0, %d]", maxRate)
	}
	check(c.Drain >= 0 && c.Drain <= maxDuration, "-drain must be 0…%s", maxDuration)
	check(c.Timeout > 0 && c.Timeout <= maxTimeout, "-timeout must be in (0, %s]", maxTimeout)
	check(c.AuthWorkers >= 1 && c.AuthWorkers <= 64, "-auth-workers must be 1…64")
	check(c.DialWorkers >= 1 && c.DialWorkers <= 1024, "-dial-workers must be 1…1024")
	msgs := int64(c.Rooms) * int64(c.Senders) * int64(c.perSender())
	check(msgs <= maxMessages, "%d planned messages, more than %d", msgs, maxMessages)
	deliveries := msgs * int64(c.Conns/max(c.Rooms, 1)+1)
	check(deliveries <= maxDeliveries, "about %d planned deliveries, more than %d", deliveries, maxDeliveries)
	if c.Spawn == "" {
		_, err := loopbackBase(c.URL)
		check(err == nil, "%v", err)
	}
	check(c.Spawn != "" || len(c.SpawnEnv) == 0, "-spawn-env needs -spawn (a server started by the tool)")
	check(c.Edges >= 0 && c.Edges <= maxEdges, "-spawn-edges must be 0…%d", maxEdges)
	check(c.Edges == 0 || c.Spawn != "", "-spawn-edges needs -spawn (a cluster started by the tool)")
	check(c.Edges == 0 || c.Mode == ModeNative, "-spawn-edges runs %s connections only (the edges serve pocketchat's endpoints)", ModeNative)
	for _, kv := range c.SpawnEnv {
		err := checkEnvEntry(kv)
		check(err == nil, "%v", err)
	}
	return errors.Join(errs...)
}

// envList is a repeated -spawn-env flag.
type envList []string

func (e *envList) String() string {
	if e == nil {
		return ""
	}
	return strings.Join(*e, " ")
}

func (e *envList) Set(v string) error {
	if err := checkEnvEntry(v); err != nil {
		return err
	}
	*e = append(*e, v)
	return nil
}

// checkEnvEntry checks an environment entry's KEY=VALUE shape: a key of
// letters, digits and underscores not starting with a digit, then "=",
// then any value (empty included) without a NUL byte.
func checkEnvEntry(kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("-spawn-env %q: want KEY=VALUE", kv)
	}
	valid := key != ""
	for i, c := range key {
		if !(c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9') {
			valid = false
		}
	}
	if !valid {
		return fmt.Errorf("-spawn-env %q: the key must be letters, digits and underscores, not starting with a digit", kv)
	}
	if strings.ContainsRune(value, 0) {
		return fmt.Errorf("-spawn-env %q: the value holds a NUL byte", kv)
	}
	return nil
}

// perSender is how many messages each sender plans to send.
func (c *Config) perSender() int {
	if c.Senders == 0 {
		return 0
	}
	if c.Burst > 0 {
		return c.Burst
	}
	return max(1, int(c.Rate*c.Duration.Seconds()))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Every connection is a file: take all the hard limit allows, here
	// and (inherited) in the servers the tool starts.
	raiseFileLimit()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "suite" {
		err = suiteMain(ctx, os.Args[2:], os.Stdout, os.Stderr)
	} else {
		err = runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatbench:", err)
		os.Exit(1)
	}
}

// runMain runs one scenario from the command line and prints its report.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	res, err := Run(ctx, cfg, progress(cfg.Quiet, stderr))
	if err != nil {
		return err
	}
	res.Command = "chatbench " + strings.Join(args, " ")
	printResult(stdout, res)
	if cfg.JSON != "" {
		return writeJSON(cfg.JSON, res)
	}
	return nil
}

// progress returns a logger for progress lines, or one that drops them.
func progress(quiet bool, w io.Writer) func(format string, args ...any) {
	if quiet {
		return func(string, ...any) {}
	}
	start := time.Now()
	return func(format string, args ...any) {
		fmt.Fprintf(w, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
}
