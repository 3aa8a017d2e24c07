# cefiot: the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

BIN      := bin
SERVICES := capture enrich bridge sink scheduler
TOOLS    := cefiot-local cefiot-kafka cefiot-genvideo
VIDEO    ?=
GO       ?= go
# Each package's test binary gets this long; the end-to-end tests are inside.
TEST_TIMEOUT ?= 30m

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## build the five services and the tools into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(addprefix ./services/,$(SERVICES))
	$(GO) build -o $(BIN)/ $(addprefix ./cmd/,$(TOOLS))

.PHONY: kafka
kafka: ## fetch Apache Kafka jars from Maven Central into .cache/
	./scripts/fetch-kafka.sh

.PHONY: run
run: build kafka ## run the local default (edge + cloud); VIDEO=path for your own video
	$(BIN)/cefiot-local -bin-dir $(BIN) -run-dir run $(if $(VIDEO),-video $(VIDEO))

.PHONY: test
test: build kafka ## run every test, on real Kafka and etcd
	CEFIOT_REQUIRE_KAFKA=1 CEFIOT_BIN_DIR=$(CURDIR)/$(BIN) $(GO) test -timeout $(TEST_TIMEOUT) -count=1 \
		./proto/... ./libs/... $(addsuffix /...,$(addprefix ./services/,$(SERVICES))) ./cmd/...

.PHONY: test-short
test-short: ## fast tests only
	$(GO) test -short -count=1 ./proto/... ./libs/... $(addsuffix /...,$(addprefix ./services/,$(SERVICES))) ./cmd/...

.PHONY: generate
generate: ## regenerate proto/gen with buf and local plugins
	./scripts/generate.sh

.PHONY: check
check: ## gofmt, go vet, generated code current, buf lint and breaking
	@out=$$(gofmt -l proto libs services cmd); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./proto/... ./libs/... $(addsuffix /...,$(addprefix ./services/,$(SERVICES))) ./cmd/...
	./scripts/check-generated.sh
	./scripts/buf-checks.sh

.PHONY: bench
bench: build kafka ## benchmarks (printed as tables)
	$(GO) test -run '^$$' -bench . -benchtime 20x ./services/capture/... ./services/sink/...

.PHONY: clean
clean: ## remove build outputs and run data (keeps the download cache)
	rm -rf $(BIN) run
