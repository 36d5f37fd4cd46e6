# pocketchat: `make run` starts the server, `make test` runs every test.
# PocketBase v0.40 needs Go 1.27: the toolchain comes from the module proxy.
export GOTOOLCHAIN := go1.27.4+auto

BIN  ?= bin/pocketchat
ADDR ?= 127.0.0.1:8090
DATA ?= pb_data
FUZZTIME ?= 10s
BROWSER_DIR := e2e/browser

.PHONY: run build test test-go test-browser browser-deps fuzz bench lint clean

run: build
	./$(BIN) serve --http $(ADDR) --dir $(DATA)

build:
	go build -o $(BIN) .

# Every test: vet, the Go tests with the race detector (unit tests and
# end-to-end tests against the real binary), the browser client's tests in
# Chromium, then short fuzz runs.
test: lint test-go test-browser fuzz

test-go:
	go test -race -count=1 -timeout 20m ./...

# The browser tests (e2e/browser) drive Debian's Chromium with playwright-core
# against the built binary, which embeds pb_public/. Node's test runner.
test-browser: build browser-deps
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

# Each fuzz target for a bounded time; a crasher is written to testdata/
# and fails the run.
fuzz:
	go test -run='^$$' -fuzz='^FuzzDecodeNative$$' -fuzztime=$(FUZZTIME) ./internal/protocol/
	go test -run='^$$' -fuzz='^FuzzParseCommand$$' -fuzztime=$(FUZZTIME) ./internal/bot/

bench:
	go test -run='^$$' -bench=. -benchmem ./internal/...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...

clean:
	rm -rf bin
