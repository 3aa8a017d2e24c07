# cefiot: the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

BIN      := bin
SERVICES := capture enrich bridge sink scheduler
TOOLS    := cefiot-local cefiot-kafka cefiot-genvideo cefiotctl cefiot-images cefiot-pki cefiot-acls cefiot-dataplane-bench cefiot-failover-bench cefiot-bench-bridge cefiot-fanin-bench
VIDEO    ?=
GO       ?= go
# Every Go package of the workspace (tools/ is its own module, outside it).
GO_PKGS  := ./proto/... ./libs/... ./libs/harness/... ./libs/harness/videogen/... $(addsuffix /...,$(addprefix ./services/,$(SERVICES))) ./cmd/... ./k8s/check/...
# Each package's test binary gets this long; the end-to-end tests are inside.
TEST_TIMEOUT ?= 50m

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
# The version every binary reports (its commit); Go stamps none in a workspace.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
VERSION_FLAG = -X github.com/cefiot/cefiot/libs/buildinfo.buildVersion=$(VERSION)

build: ## build the five services and the tools into bin/
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(VERSION_FLAG)" -o $(BIN)/ $(addprefix ./services/,$(SERVICES))
	$(GO) build -ldflags "$(VERSION_FLAG)" -o $(BIN)/ $(addprefix ./cmd/,$(TOOLS))

.PHONY: kafka
kafka: ## fetch Apache Kafka jars from Maven Central into .cache/
	./scripts/fetch-kafka.sh

.PHONY: versitygw
versitygw: ## install versitygw (S3 server the sink's S3 store tests run against) into .cache/bin
	./scripts/fetch-versitygw.sh >/dev/null

.PHONY: footage
footage: ## fetch real footage with people (OpenCV's pedestrian sample, from Debian's opencv-doc) into .cache/footage
	./scripts/fetch-footage.sh >/dev/null

# Container images (no container engine needed): one OCI layout per service.
IMAGES_DIR ?= $(BIN)/images

.PHONY: images
images: ## build one OCI image per service into bin/images (linux/amd64 + linux/arm64, no Docker)
	sysroot=$$(./scripts/fetch-arm64-opencv.sh) && \
	$(GO) run ./cmd/cefiot-images -out $(IMAGES_DIR) -sysroot-arm64 "$$sysroot"

.PHONY: site-images
site-images: kafka ## build the images of a site's Kafka and etcd into bin/images (this machine's architecture; for the one-node test cluster)
	libs=$$(./scripts/fetch-kafka.sh) && \
	$(GO) run ./cmd/cefiot-images -out $(IMAGES_DIR) -services= -site-images -kafka-libs "$$libs"

.PHONY: kube-apiserver
kube-apiserver: ## build kube-apiserver from k8s.io/kubernetes into .cache/bin (the deploy checks admit the overlays with it)
	./scripts/build-kube-apiserver.sh

.PHONY: kube-node
kube-node: kube-apiserver ## build kubelet, kube-controller-manager, kube-scheduler and containerd into .cache/bin (the one-node test cluster)
	./scripts/build-kube-node.sh

.PHONY: web-e2e
web-e2e: ## install the console's browser test driver (playwright-core, pinned in web/e2e/package-lock.json)
	cd web/e2e && npm ci --ignore-scripts --no-audit --no-fund >/dev/null

.PHONY: run
run: build kafka ## run the local default (edge + cloud); VIDEO=path for your own video, EDGE_NODES=n to simulate n edge nodes, SINK_REPLICAS=n for n sinks on a PostgreSQL index, DETECTOR=hog for people labels
	$(BIN)/cefiot-local -bin-dir $(BIN) -run-dir run $(if $(VIDEO),-video $(VIDEO)) $(if $(EDGE_NODES),-edge-nodes $(EDGE_NODES)) $(if $(SINK_REPLICAS),-index postgres -sink-replicas $(SINK_REPLICAS)) $(if $(DETECTOR),-detector $(DETECTOR))

.PHONY: test
test: build kafka versitygw footage images site-images web-e2e kube-apiserver kube-node ## run every test, on real Kafka, etcd and PostgreSQL (and the deploy checks, on a real kube-apiserver and a real one-node cluster)
	CEFIOT_REQUIRE_KUBE_APISERVER=1 CEFIOT_REQUIRE_KUBE_NODE=1 CEFIOT_REQUIRE_MOSQUITTO=1 CEFIOT_REQUIRE_FOOTAGE=1 CEFIOT_REQUIRE_BROWSER=1 CEFIOT_REQUIRE_KAFKA=1 CEFIOT_REQUIRE_POSTGRES=1 CEFIOT_REQUIRE_S3=1 CEFIOT_REQUIRE_IMAGES=1 CEFIOT_REQUIRE_QEMU=1 CEFIOT_IMAGES_DIR=$(CURDIR)/$(IMAGES_DIR) CEFIOT_BIN_DIR=$(CURDIR)/$(BIN) $(GO) test -timeout $(TEST_TIMEOUT) -count=1 $(GO_PKGS)

.PHONY: test-short
test-short: ## fast tests only
	$(GO) test -short -count=1 $(GO_PKGS)

.PHONY: generate
generate: ## regenerate proto/gen with buf and local plugins
	./scripts/generate.sh

.PHONY: check
check: lint ## gofmt, go vet, staticcheck, errcheck, generated code current, buf lint and breaking, module boundaries
	@out=$$(gofmt -l proto libs services cmd k8s); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(GO_PKGS)
	./scripts/check-generated.sh
	./scripts/buf-checks.sh
	./scripts/check-structure.sh

.PHONY: lint
lint: ## staticcheck and errcheck (versions pinned in tools/go.mod; errcheck's exclusions with reasons in .errcheck-excludes)
	./tools/install.sh
	.cache/bin/staticcheck $(GO_PKGS)
	.cache/bin/errcheck -exclude .errcheck-excludes -ignoregenerated $(GO_PKGS)

.PHONY: bench
# Sizes of the sink's PostgreSQL index that make bench measures, in frames,
# comma-separated and increasing (1000000,10000000 for 10 million too: the
# index then takes about 18 GB of disk, 1.8 KB a frame).
BENCH_INDEX_FRAMES ?= 1000000

bench: build kafka footage ## benchmarks (printed as tables); BENCH_INDEX_FRAMES=n,m for more sizes of the PostgreSQL index
	CEFIOT_REQUIRE_POSTGRES=1 CEFIOT_INDEX_BENCH_FRAMES=$(BENCH_INDEX_FRAMES) $(GO) test -timeout $(TEST_TIMEOUT) -run '^$$' -bench . -benchtime 20x ./services/capture/... ./services/enrich/... ./services/sink/...
	$(GO) run ./cmd/cefiot-dataplane-bench -bin-dir $(BIN)
	$(GO) run ./cmd/cefiot-failover-bench -bin-dir $(BIN) -trials 20
	./scripts/fetch-kafka.sh --with-mm2 >/dev/null
	$(GO) run ./cmd/cefiot-bench-bridge -bin-dir $(BIN)
	$(GO) run ./cmd/cefiot-fanin-bench -bin-dir $(BIN)

.PHONY: clean
clean: ## remove build outputs and run data (keeps the download cache)
	rm -rf $(BIN) run
