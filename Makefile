# pocketchat: `make run` starts the server, `make test` runs every test.
# PocketBase v0.40 needs Go 1.27: the toolchain comes from the module proxy.
export GOTOOLCHAIN := go1.27.4+auto

BIN  ?= bin/pocketchat
ADDR ?= 127.0.0.1:8090
DATA ?= pb_data
FUZZTIME ?= 10s
BROWSER_DIR := e2e/browser
SOCKETIO_DIR := e2e/socketio

.PHONY: run build test test-go e2e-deps test-browser browser-deps test-socketio socketio-deps fuzz bench bench-load lint clean

run: build
	./$(BIN) serve --http $(ADDR) --dir $(DATA)

build:
	go build -o $(BIN) .

# Every test: vet, the Go tests with the race detector (unit tests and
# end-to-end tests against the real binary), the browser client's tests in
# Chromium, the official socket.io clients against /socket.io/, then short
# fuzz runs.
test: lint test-go test-browser test-socketio fuzz

test-go: e2e-deps
	go test -race -count=1 -timeout 20m ./...

# What the Go tests need besides Go, installed when missing (CI starts
# bare; we are root there): Debian's nginx, which e2e/nginx_test.go starts
# in front of the server, and redis-server, which the cluster tests start
# (internal/redistest, e2e/cluster.mjs).
e2e-deps:
	@(command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]) && command -v redis-server >/dev/null || \
		(apt-get update && apt-get install -y nginx redis-server)

# The browser tests (e2e/browser) drive Debian's Chromium with playwright-core
# against the built binary, which embeds pb_public/. Node's test runner.
test-browser: build browser-deps e2e-deps
	cd $(BROWSER_DIR) && POCKETCHAT_BIN=$(abspath $(BIN)) node --test --test-timeout=120000

# What the browser tests need, installed when missing (CI starts bare; we
# are root there): Chromium and an emoji font from apt, playwright-core from
# npm, reinstalled only when package-lock.json changed.
browser-deps:
	@command -v chromium >/dev/null && dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || \
		(apt-get update && apt-get install -y chromium fonts-noto-color-emoji)
	@cmp -s $(BROWSER_DIR)/package-lock.json $(BROWSER_DIR)/node_modules/.installed-lock 2>/dev/null || \
		(npm ci --prefix $(BROWSER_DIR) --no-audit --no-fund && \
		 cp $(BROWSER_DIR)/package-lock.json $(BROWSER_DIR)/node_modules/.installed-lock)

# The socket.io tests (e2e/socketio) run the official socket.io-client 4.x,
# 3.x and 2.x (npm aliases sio4, sio3, sio2) and native WebSocket clients
# against the built binary. Node's test runner.
test-socketio: build socketio-deps e2e-deps
	cd $(SOCKETIO_DIR) && POCKETCHAT_BIN=$(abspath $(BIN)) node --test

# The socket.io tests' npm packages, installed when missing or when
# package-lock.json changed.
socketio-deps:
	@cmp -s $(SOCKETIO_DIR)/package-lock.json $(SOCKETIO_DIR)/node_modules/.installed-lock 2>/dev/null || \
		(npm ci --prefix $(SOCKETIO_DIR) --no-audit --no-fund && \
		 cp $(SOCKETIO_DIR)/package-lock.json $(SOCKETIO_DIR)/node_modules/.installed-lock)

# Each fuzz target for a bounded time; a crasher is written to testdata/
# and fails the run.
fuzz:
	go test -run='^$$' -fuzz='^FuzzDecodeNative$$' -fuzztime=$(FUZZTIME) ./internal/protocol/
	go test -run='^$$' -fuzz='^FuzzParseCommand$$' -fuzztime=$(FUZZTIME) ./internal/bot/
	go test -run='^$$' -fuzz='^FuzzDecodePacket$$' -fuzztime=$(FUZZTIME) ./internal/engineio/
	go test -run='^$$' -fuzz='^FuzzDecodePayload$$' -fuzztime=$(FUZZTIME) ./internal/engineio/
	go test -run='^$$' -fuzz='^FuzzDecodeBinaryPayload$$' -fuzztime=$(FUZZTIME) ./internal/engineio/
	go test -run='^$$' -fuzz='^FuzzDecodePacket$$' -fuzztime=$(FUZZTIME) ./internal/socketio/
	go test -run='^$$' -fuzz='^FuzzDecodeEvent$$' -fuzztime=$(FUZZTIME) ./internal/socketio/
	go test -run='^$$' -fuzz='^FuzzFrameReader$$' -fuzztime=$(FUZZTIME) ./internal/ws/

# The micro-benchmarks of internal/ (-count=$(BENCH_COUNT); the document
# keeps each one's median), then the load tool (cmd/chatbench) on its fixed
# scenario set: steady and burst loads natively and the plain-PocketBase way
# (SSE realtime + REST), Tier A, Tier B, a 5,000-member fan-out and as many
# idle connections as the open-files limit allows, each run against a freshly
# started server (--dev=false, one temporary data directory), every run
# bounded by its own timeout. Rewrites docs/benchmarks.md with the measured
# numbers and whether each target holds; each run's raw result stays in
# bin/bench-results/ (`bin/chatbench suite -from-json bin/bench-results -micro
# bin/bench-micro.txt` writes the document again from them). Then the levers:
# five settings of the server (CHAT_CHECKPOINT_EVERY, CHAT_COMMIT_BATCH,
# CHAT_WORDFILTER, CHAT_WS_POLL, CHAT_PRESENCE_LIMIT), each measured on one
# scenario as before its change and at its default, about 10 more minutes.
# 45 minutes on 2 cores with BENCH_REPEAT=3, which runs each load scenario
# three times and reports medians (about half that with one run each);
# BENCH_LEVER_REPEAT=3 repeats each lever's two runs.
BENCH_COUNT ?= 3
BENCH_REPEAT ?= 1
BENCH_LEVER_REPEAT ?= 1
BENCH_MICRO := bin/bench-micro.txt

bench: build
	go build -o bin/chatbench ./cmd/chatbench
	go test -run='^$$' -bench=. -benchmem -count=$(BENCH_COUNT) ./internal/... > $(BENCH_MICRO) || { cat $(BENCH_MICRO); exit 1; }
	cat $(BENCH_MICRO)
	./bin/chatbench suite -bin $(BIN) -micro $(BENCH_MICRO) -repeat $(BENCH_REPEAT) -lever-repeat $(BENCH_LEVER_REPEAT) -json-dir bin/bench-results -out docs/benchmarks.md

# The former name of the whole benchmark run.
bench-load: bench

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...

clean:
	rm -rf bin
