# payworker: the commands a newcomer needs. `make test` is what CI runs.
GO ?= go

.PHONY: test vet dev sandbox redis-server fuzz

## test: vet and run every test (starts its own NATS and redis-server; installs redis-server if missing)
test: redis-server
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

vet:
	gofmt -l . | (! grep .) || (echo "gofmt would change the files above" && exit 1)
	$(GO) vet ./...

## dev: run the worker with embedded NATS, Redis and the Dintero sandbox
dev:
	$(GO) run ./cmd/payworker dev

## sandbox: run the Dintero sandbox alone
sandbox:
	$(GO) run ./cmd/dintero-sandbox

## fuzz: run every fuzz target for FUZZTIME each (CI runs this short)
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeChargeRequest$$' -fuzztime $(FUZZTIME) ./messages
	$(GO) test -run '^$$' -fuzz '^FuzzFastPathAgrees$$' -fuzztime $(FUZZTIME) ./messages
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeSessionRequest$$' -fuzztime $(FUZZTIME) ./messages
	$(GO) test -run '^$$' -fuzz '^FuzzSessionFastPathAgrees$$' -fuzztime $(FUZZTIME) ./messages
	$(GO) test -run '^$$' -fuzz '^FuzzResponses$$' -fuzztime $(FUZZTIME) ./dintero

redis-server:
	@command -v redis-server >/dev/null 2>&1 || sh .ci/install-redis

## chaos: run payworker under chaos (real nats-server, redis-server, sandbox, 3 workers) and audit the
## ledger; CHAOS_REQUESTS=2000 make chaos is the short run
.PHONY: chaos
chaos: redis-server
	$(GO) run ./cmd/paychaos

## chaos-cluster: the chaos run on a three-node NATS JetStream cluster (R3 streams) and Redis with Sentinel:
## SIGKILLs the leaders of the requests stream, the consumer and the results stream, and the Redis primary,
## besides the workers; CHAOS_REQUESTS=2000 make chaos-cluster is the short run
.PHONY: chaos-cluster
chaos-cluster: redis-server
	$(GO) run ./cmd/paychaos -cluster $(CHAOS_FLAGS)

## bench: measure payworker end to end (real nats-server, redis-server, the sandbox and one worker, each
## in its own process) against a naive worker and raw JetStream, and check the targets; medians of
## BENCH_RUNS=5 runs of BENCH_REQUESTS=50000; BENCH_REQUESTS=5000 BENCH_RUNS=1 make bench is the quick run,
## BENCH_JSON=bench.json also writes the figures
.PHONY: bench
bench: redis-server
	$(GO) run ./cmd/paybench
