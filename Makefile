# pocketchat: `make run` starts the server, `make test` runs every test.
# PocketBase v0.40 needs Go 1.27: the toolchain comes from the module proxy.
export GOTOOLCHAIN := go1.27.4+auto

BIN  ?= bin/pocketchat
ADDR ?= 127.0.0.1:8090
DATA ?= pb_data
FUZZTIME ?= 10s

.PHONY: run build test test-go fuzz bench lint clean

run: build
	./$(BIN) serve --http $(ADDR) --dir $(DATA)

build:
	go build -o $(BIN) .

# Every test: vet, the Go tests with the race detector (unit tests and
# end-to-end tests against the real binary), then short fuzz runs.
test: lint test-go fuzz

test-go:
	go test -race -count=1 -timeout 20m ./...

# Each fuzz target for a bounded time; a crasher is written to testdata/
# and fails the run.
fuzz:
	go test -run='^$$' -fuzz='^FuzzDecodeNative$$' -fuzztime=$(FUZZTIME) ./internal/protocol/

bench:
	go test -run='^$$' -bench=. -benchmem ./internal/...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...

clean:
	rm -rf bin
