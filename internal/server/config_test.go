package server_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/limit"
	"pocketchat/internal/server"
	"pocketchat/internal/ws"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigDefaults(t *testing.T) {
	c, err := server.ConfigFromEnv(envMap(nil))
	if err != nil {
		t.Fatalf("ConfigFromEnv(empty) error: %v", err)
	}
	if want := server.DefaultConfig(); !reflect.DeepEqual(c, want) {
		t.Errorf("ConfigFromEnv(empty) = %+v, want DefaultConfig() %+v", c, want)
	}
	want := server.Config{
		Guests:        true,
		PageSize:      chat.DefaultPageSize,
		PresenceLimit: 500,
		MaxText:       chat.MaxTextLen,
		TicketTTL:     30 * time.Second,
		ShutdownWait:  5 * time.Second,
		WS: ws.Config{
			WriteWait:  10 * time.Second,
			PingPeriod: 25 * time.Second,
			PongWait:   60 * time.Second,
			MaxFrame:   64 << 10,
			Queue:      512,
		},
		WSPoll:    true,
		HooksPool: 4,
		Banner:    true,
		Bot: server.BotConfig{
			Enabled:  true,
			Name:     "bot",
			Aliases:  c.Bot.Aliases, // nil or empty, compared below
			Backend:  server.BotLocal,
			APIURL:   "https://api.openai.com/v1",
			Timeout:  20 * time.Second,
			Context:  20,
			UserRate: 5,
			RoomRate: 20,
		},
		CommitBatch:     256,
		CommitWait:      2 * time.Millisecond,
		CheckpointEvery: 250 * time.Millisecond,
		SendRate:        limit.Rate{Per: 10, Burst: 20},
		AbuseRefusals:   30,
		EditWindow:      15 * time.Minute,
		RedisPrefix:     "pocketchat:",
		NodeTTL:         5 * time.Second,
		ConnsPerUser:    20,
		ConnsPerIP:      200,
		JoinsPerConn:    1000,
		TypingRate:      limit.Rate{Per: 2, Burst: 5},
		TicketRate:      limit.Rate{Per: 1, Burst: 10},
	}
	if len(c.Bot.Aliases) != 0 {
		t.Errorf("default bot aliases = %q, want none", c.Bot.Aliases)
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
}

func TestConfigFromEnvEveryVariable(t *testing.T) {
	c, err := server.ConfigFromEnv(envMap(map[string]string{
		"CHAT_ALLOWED_ORIGINS":  "https://chat.example.com,http://localhost:5173",
		"CHAT_GUESTS":           "false",
		"CHAT_HISTORY_PAGE":     "20",
		"CHAT_PRESENCE_LIMIT":   "3",
		"CHAT_MAX_TEXT":         "500",
		"CHAT_TICKET_TTL":       "45s",
		"CHAT_SHUTDOWN_WAIT":    "1m",
		"CHAT_WS_MAX_FRAME":     "1024",
		"CHAT_WS_QUEUE":         "16",
		"CHAT_WS_PING":          "5s",
		"CHAT_WS_PONG_WAIT":     "12s",
		"CHAT_WS_WRITE_WAIT":    "3s",
		"CHAT_PUBLIC_DIR":       "/srv/chat/public",
		"CHAT_HOOKS_DIR":        "/srv/chat/hooks",
		"CHAT_HOOKS_POOL":       "0",
		"CHAT_COMMIT_BATCH":     "32",
		"CHAT_COMMIT_WAIT":      "2ms",
		"CHAT_WS_POLL":          "false",
		"CHAT_CHECKPOINT_EVERY": "1s",
		"CHAT_SEND_RATE":        "0.5",
		"CHAT_SEND_BURST":       "3",
		"CHAT_ABUSE_REFUSALS":   "0",
		"CHAT_EDIT_WINDOW":      "0s",
		"CHAT_CONNS_PER_USER":   "3",
		"CHAT_CONNS_PER_IP":     "0",
		"CHAT_JOINS_PER_CONN":   "7",
		"CHAT_TYPING_RATE":      "0",
		"CHAT_TYPING_BURST":     "1",
		"CHAT_TICKET_RATE":      "0.25",
		"CHAT_TICKET_BURST":     "2",
		"CHAT_REDIS_URL":        "redis://:secret@10.0.0.5:6379/2",
		"CHAT_REDIS_PREFIX":     "chat1:",
		"CHAT_NODE_TTL":         "3s",
	}))
	if err != nil {
		t.Fatalf("ConfigFromEnv error: %v", err)
	}
	want := server.Config{
		AllowedOrigins: []string{"https://chat.example.com", "http://localhost:5173"},
		Guests:         false,
		PageSize:       20,
		PresenceLimit:  3,
		MaxText:        500,
		TicketTTL:      45 * time.Second,
		ShutdownWait:   time.Minute,
		WS: ws.Config{
			WriteWait:  3 * time.Second,
			PingPeriod: 5 * time.Second,
			PongWait:   12 * time.Second,
			MaxFrame:   1024,
			Queue:      16,
		},
		PublicDir:       "/srv/chat/public",
		HooksDir:        "/srv/chat/hooks",
		HooksPool:       0,
		Banner:          true,
		Bot:             server.DefaultConfig().Bot, // CHAT_BOT_* are covered by the bot's config tests
		CommitBatch:     32,
		CommitWait:      2 * time.Millisecond,
		CheckpointEvery: time.Second,
		SendRate:        limit.Rate{Per: 0.5, Burst: 3},
		AbuseRefusals:   0,
		ConnsPerUser:    3,
		ConnsPerIP:      0,
		JoinsPerConn:    7,
		TypingRate:      limit.Rate{Per: 0, Burst: 1},
		TicketRate:      limit.Rate{Per: 0.25, Burst: 2},
		RedisURL:        "redis://:secret@10.0.0.5:6379/2",
		RedisPrefix:     "chat1:",
		NodeTTL:         3 * time.Second,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("ConfigFromEnv =\n%+v\nwant\n%+v", c, want)
	}
}

func TestConfigFromEnvLimits(t *testing.T) {
	tests := []struct {
		key, val string
		get      func(server.Config) any
		want     any
	}{
		{"CHAT_HISTORY_PAGE", "1", func(c server.Config) any { return c.PageSize }, 1},
		{"CHAT_HISTORY_PAGE", "100", func(c server.Config) any { return c.PageSize }, 100},
		{"CHAT_PRESENCE_LIMIT", "1", func(c server.Config) any { return c.PresenceLimit }, 1},
		{"CHAT_PRESENCE_LIMIT", "10000", func(c server.Config) any { return c.PresenceLimit }, 10000},
		{"CHAT_MAX_TEXT", "4000", func(c server.Config) any { return c.MaxText }, 4000},
		{"CHAT_WS_MAX_FRAME", "16777216", func(c server.Config) any { return c.WS.MaxFrame }, int64(16 << 20)},
		{"CHAT_HOOKS_POOL", "1000", func(c server.Config) any { return c.HooksPool }, 1000},
		{"CHAT_GUESTS", "1", func(c server.Config) any { return c.Guests }, true},
		{"CHAT_GUESTS", "FALSE", func(c server.Config) any { return c.Guests }, false},
		{"CHAT_TICKET_TTL", "1500ms", func(c server.Config) any { return c.TicketTTL }, 1500 * time.Millisecond},
		{"CHAT_WS_PONG_WAIT", "2h", func(c server.Config) any { return c.WS.PongWait }, 2 * time.Hour},
		{"CHAT_COMMIT_BATCH", "1", func(c server.Config) any { return c.CommitBatch }, 1},
		{"CHAT_COMMIT_BATCH", "4096", func(c server.Config) any { return c.CommitBatch }, 4096},
		{"CHAT_COMMIT_WAIT", "0", func(c server.Config) any { return c.CommitWait }, time.Duration(0)},
		{"CHAT_COMMIT_WAIT", "0s", func(c server.Config) any { return c.CommitWait }, time.Duration(0)},
		{"CHAT_COMMIT_WAIT", "250us", func(c server.Config) any { return c.CommitWait }, 250 * time.Microsecond},
		{"CHAT_CHECKPOINT_EVERY", "0", func(c server.Config) any { return c.CheckpointEvery }, time.Duration(0)},
		{"CHAT_CHECKPOINT_EVERY", "10s", func(c server.Config) any { return c.CheckpointEvery }, 10 * time.Second},
		{"CHAT_WS_POLL", "0", func(c server.Config) any { return c.WSPoll }, false},
		{"CHAT_COMMIT_WAIT", "1s", func(c server.Config) any { return c.CommitWait }, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.val, func(t *testing.T) {
			c, err := server.ConfigFromEnv(envMap(map[string]string{tt.key: tt.val}))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if got := tt.get(c); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfigFromEnvBadValues(t *testing.T) {
	tests := []struct{ key, val string }{
		{"CHAT_GUESTS", "maybe"},
		{"CHAT_GUESTS", "yes"},
		{"CHAT_HISTORY_PAGE", "0"},
		{"CHAT_HISTORY_PAGE", "101"},
		{"CHAT_HISTORY_PAGE", "ten"},
		{"CHAT_HISTORY_PAGE", "5.5"},
		{"CHAT_PRESENCE_LIMIT", "0"},
		{"CHAT_PRESENCE_LIMIT", "-1"},
		{"CHAT_PRESENCE_LIMIT", "10001"},
		{"CHAT_PRESENCE_LIMIT", "many"},
		{"CHAT_MAX_TEXT", "0"},
		{"CHAT_MAX_TEXT", "4001"},
		{"CHAT_TICKET_TTL", "30"}, // no unit
		{"CHAT_TICKET_TTL", "0s"},
		{"CHAT_TICKET_TTL", "-5s"},
		{"CHAT_SHUTDOWN_WAIT", "soon"},
		{"CHAT_WS_MAX_FRAME", "1023"},
		{"CHAT_WS_MAX_FRAME", "16777217"},
		{"CHAT_WS_MAX_FRAME", "64KiB"},
		{"CHAT_WS_QUEUE", "0"},
		{"CHAT_WS_QUEUE", "-1"},
		{"CHAT_WS_QUEUE", "1048577"},
		{"CHAT_WS_PING", "often"},
		{"CHAT_WS_PONG_WAIT", "0"},
		{"CHAT_WS_WRITE_WAIT", "10"},
		{"CHAT_HOOKS_POOL", "-1"},
		{"CHAT_HOOKS_POOL", "1001"},
		{"CHAT_COMMIT_BATCH", "0"},
		{"CHAT_COMMIT_BATCH", "4097"},
		{"CHAT_COMMIT_BATCH", "lots"},
		{"CHAT_COMMIT_WAIT", "5"}, // no unit
		{"CHAT_COMMIT_WAIT", "-1ms"},
		{"CHAT_COMMIT_WAIT", "1001ms"},
		{"CHAT_CHECKPOINT_EVERY", "11s"},
		{"CHAT_CHECKPOINT_EVERY", "-1s"},
		{"CHAT_SEND_RATE", "-1"},
		{"CHAT_SEND_RATE", "NaN"},
		{"CHAT_SEND_RATE", "fast"},
		{"CHAT_SEND_BURST", "0"},
		{"CHAT_ABUSE_REFUSALS", "-1"},
		{"CHAT_WS_POLL", "sometimes"},
		{"CHAT_COMMIT_WAIT", "soon"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.val, func(t *testing.T) {
			c, err := server.ConfigFromEnv(envMap(map[string]string{tt.key: tt.val}))
			if err == nil {
				t.Fatalf("error = nil, want one naming %s", tt.key)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q does not name %s", err, tt.key)
			}
			if !strings.Contains(err.Error(), tt.val) {
				t.Errorf("error %q does not quote the bad value %q", err, tt.val)
			}
			// The rest of the configuration is still the defaults.
			if c.PageSize != chat.DefaultPageSize && tt.key != "CHAT_HISTORY_PAGE" {
				t.Errorf("PageSize = %d, want the default", c.PageSize)
			}
		})
	}
}

func TestConfigFromEnvReportsEveryBadVariable(t *testing.T) {
	_, err := server.ConfigFromEnv(envMap(map[string]string{
		"CHAT_GUESTS":       "maybe",
		"CHAT_WS_QUEUE":     "lots",
		"CHAT_HISTORY_PAGE": "20", // good
	}))
	if err == nil {
		t.Fatal("error = nil, want one")
	}
	for _, key := range []string{"CHAT_GUESTS", "CHAT_WS_QUEUE"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
	if strings.Contains(err.Error(), "CHAT_HISTORY_PAGE") {
		t.Errorf("error %q names the good CHAT_HISTORY_PAGE", err)
	}
}

func TestConfigAllowedOrigins(t *testing.T) {
	tests := []struct {
		val  string
		want []string
	}{
		{"", nil},
		{"https://a.example", []string{"https://a.example"}},
		{" https://a.example/ , http://b.example:8080// ", []string{"https://a.example", "http://b.example:8080"}},
		{"https://a.example,,  ,", []string{"https://a.example"}},
		{"*", []string{"*"}},
		{" , / ,", nil},
		{"HTTPS://A.example", []string{"HTTPS://A.example"}}, // compared case-insensitively later
	}
	for _, tt := range tests {
		t.Run(tt.val, func(t *testing.T) {
			c, err := server.ConfigFromEnv(envMap(map[string]string{"CHAT_ALLOWED_ORIGINS": tt.val}))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !reflect.DeepEqual(c.AllowedOrigins, tt.want) {
				t.Errorf("AllowedOrigins = %q, want %q", c.AllowedOrigins, tt.want)
			}
		})
	}
}

func TestConfigPingMustBeShorterThanPongWait(t *testing.T) {
	tests := []struct {
		ping, pong string
		wantErr    bool
	}{
		{"", "", false},
		{"59s", "", false},
		{"60s", "", true}, // equal to the default pong wait
		{"90s", "", true},
		{"", "25s", true}, // equal to the default ping period
		{"", "10s", true},
		{"10s", "5s", true},
		{"1s", "2s", false},
	}
	for _, tt := range tests {
		t.Run("ping="+tt.ping+",pong="+tt.pong, func(t *testing.T) {
			m := map[string]string{}
			if tt.ping != "" {
				m["CHAT_WS_PING"] = tt.ping
			}
			if tt.pong != "" {
				m["CHAT_WS_PONG_WAIT"] = tt.pong
			}
			_, err := server.ConfigFromEnv(envMap(m))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && (!strings.Contains(err.Error(), "CHAT_WS_PING") || !strings.Contains(err.Error(), "CHAT_WS_PONG_WAIT")) {
				t.Errorf("error %q does not name both CHAT_WS_PING and CHAT_WS_PONG_WAIT", err)
			}
		})
	}
}
