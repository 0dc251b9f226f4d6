# oomsight: the two commands a fresh machine needs are `make run` and
# `make test`; every target installs or builds what it uses (Go modules
# through the module proxy, tools pinned in internal/tools/go.mod's tool directive).

SHELL := /bin/bash
GO    ?= go
# The Go every target runs: go.mod's toolchain line (go1.27.3, the newest
# this environment approves; the go command fetches it through the module
# proxy once, ~76 MB). go1.26.8's standard library has known
# vulnerabilities that go1.27.3 fixes (make vulncheck, docs/maintenance.md).
# A machine's go ignores the toolchain line unless told, hence the export;
# the go line stays 1.26.8 so that the receiver's importers may build with it.
export GOTOOLCHAIN := $(shell awk '$$1=="toolchain" {print $$2}' go.mod)
BUILD := _build
# The tools (ocb, mdatagen, golangci-lint, addlicense, porto, misspell) are pinned in a module of their
# own, so that the receiver's importers do not inherit their dependencies.
TOOL  := $(GO) tool -modfile=internal/tools/go.mod

# The release number is written once, as dist.version in builder-config.yaml:
# ocb stamps it on the distribution, `make image` tags the image with it, and
# `make generate` writes it into internal/version for the CLI and the tests.
VERSION    := $(shell awk '/^dist:/{d=1;next} /^[^ #]/{d=0} d && /^  version:/{print $$2}' builder-config.yaml)
# The same, for targets whose VERSION is another (make update-otel VERSION=v0.N.0).
DIST_VERSION := $(shell awk '/^dist:/{d=1;next} /^[^ #]/{d=0} d && /^  version:/{print $$2}' builder-config.yaml)
VERSION_GO := internal/version/version.go

# Files `make generate` writes (mdatagen from the components' metadata.yaml, the
# root metadata.yaml copied from the receiver's, the version from
# builder-config.yaml); CI fails when they drift.
RECEIVER  := receiver/cgroupmemoryreceiver
EXPORTER  := exporter/k8seventsexporter
GENERATED := $(RECEIVER)/internal $(RECEIVER)/documentation.md $(RECEIVER)/README.md \
             $(RECEIVER)/generated_component_test.go $(RECEIVER)/generated_package_test.go \
             $(EXPORTER)/internal $(EXPORTER)/documentation.md $(EXPORTER)/README.md \
             $(EXPORTER)/generated_component_test.go $(EXPORTER)/generated_package_test.go \
             $(VERSION_GO) metadata.yaml

.PHONY: all build image deploy e2e-k8s k8s-up k8s-down kube kube-router containerd2 vmnode-image e2e-k8s-vm run test generate check-generate check-format fix-style vet lint rules cross unit e2e fuzz fuzz-short soak soak-short bench bench-short bench-peers bench-peers-short bench-v2 bench-v2-short e2e-v2 clean deps deps-test helm installers installers-if-present operator

all: build

# Debian packages besides Go, by purpose (command:package), installed with
# apt-get when missing and running as root; otherwise the fix is printed.
# Building and running the distribution (make build, make run) needs none:
# DEB_TOOLS is empty unless a target names its own. The tests need git for
# the generated-files check, gcc for the race detector, prometheus for the
# rules and for the test that a real Prometheus scrapes the distribution,
# and prometheus-node-exporter for the node capacity the dashboard's
# eviction panel reads (TEST_DEBS, through deps-test).
DEB_TOOLS ?=
TEST_DEBS := git:git gcc:gcc prometheus:prometheus promtool:prometheus \
             prometheus-node-exporter:prometheus-node-exporter

## deps: check Go, install missing Debian packages (DEB_TOOLS: none for
## build and run); deps-test: the same with what the tests need
deps:
	@command -v $(GO) >/dev/null || { echo "Go is not installed: see https://go.dev/doc/install (go.mod asks for $$(awk '/^go /{print $$2}' go.mod))"; exit 1; }
	@missing=""; for t in $(DEB_TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t##*:}"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "missing Debian packages:$$missing; install them with: sudo apt-get install -y$$missing"; exit 1; \
		fi; \
	fi

deps-test:
	@$(MAKE) --no-print-directory deps DEB_TOOLS="$(TEST_DEBS)"

## build: the collector distribution and the CLI, into _build/
build: $(BUILD)/otelcol-oomsight $(BUILD)/oomsight

# ocb generates the distribution's sources into _build and compiles them;
# go's build cache makes the rebuild cheap when nothing changed.
$(BUILD)/otelcol-oomsight: FORCE | deps
	@mkdir -p $(BUILD)
	$(TOOL) builder --config builder-config.yaml

$(BUILD)/oomsight: FORCE
	@mkdir -p $(BUILD)
	$(GO) build -o $@ ./cmd/oomsight

## image: the distribution as a container image with podman (installed from
## Debian when missing and root): localhost/otelcol-oomsight:latest and
## :$(VERSION), FROM scratch with the static binaries (the distribution,
## and the oomsight CLI for the TLS Job of deploy/kubernetes/tls.yaml) and
## Debian's CA bundle
IMAGE      ?= localhost/otelcol-oomsight
IMAGE_DEBS := podman:podman runc:runc catatonit:catatonit update-ca-certificates:ca-certificates
image: $(BUILD)/otelcol-oomsight
	@$(MAKE) --no-print-directory deps DEB_TOOLS="$(IMAGE_DEBS)"
	@test -s /etc/ssl/certs/ca-certificates.crt || update-ca-certificates
	@rm -rf $(BUILD)/image && mkdir -p $(BUILD)/image
	cp $(BUILD)/otelcol-oomsight deploy/image/Containerfile $(BUILD)/image/
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BUILD)/image/oomsight ./cmd/oomsight
	cp /etc/ssl/certs/ca-certificates.crt $(BUILD)/image/
	podman build --quiet --file $(BUILD)/image/Containerfile --tag $(IMAGE):$(VERSION) --tag $(IMAGE):latest $(BUILD)/image
	@podman image inspect --format '{{.RepoTags}} {{.Size}} bytes' $(IMAGE):$(VERSION)

## run: the distribution on deploy/config/console.yaml, metrics on the console
run: $(BUILD)/otelcol-oomsight
	$(BUILD)/otelcol-oomsight --config deploy/config/console.yaml

## generate: regenerate the receiver's and the exporter's metadata packages
## and docs (mdatagen) and internal/version from builder-config.yaml's dist.version
# The receiver's metadata.yaml is the source (a plain file in the component's
# directory, as contrib's tools want it); the root metadata.yaml, the design
# card, is its copy under a banner (TestRootMetadataIsTheReceivers checks it).
generate:
	$(TOOL) mdatagen $(RECEIVER)/metadata.yaml
	$(TOOL) mdatagen $(EXPORTER)/metadata.yaml
	@{ printf '%s\n' \
		'# Generated by make generate from receiver/cgroupmemoryreceiver/metadata.yaml,' \
		'# the receiver'"'"'s contract: DO NOT EDIT here, edit that file and run make generate.' ''; \
		cat $(RECEIVER)/metadata.yaml; } > metadata.yaml
	@case "$(VERSION)" in ""|*" "*) echo "builder-config.yaml: want exactly one dist.version, found '$(VERSION)'"; exit 1;; esac
	@printf '%s\n' \
		'// Code generated by make generate from builder-config.yaml (dist.version); DO NOT EDIT.' '' \
		'// Package version holds the release number of oomsight: the CLI prints it,' \
		'// the distribution (ocb) and its image carry the same, all from' \
		'// builder-config.yaml, the one place it is written.' \
		'package version' '' \
		'// Version is dist.version of builder-config.yaml.' \
		'const Version = "$(VERSION)"' > $(VERSION_GO)

check-generate: deps-test generate
	@if [ -n "$$(git status --porcelain --untracked-files=all -- $(GENERATED))" ]; then \
		git status --short -- $(GENERATED); \
		echo "generated files differ from metadata.yaml or builder-config.yaml: run 'make generate' and commit the result"; \
		exit 1; \
	fi

# Source files that carry the SPDX header (contrib's rule: Go and shell);
# generated files (a "Code generated ... DO NOT EDIT." line) are skipped by
# addlicense and by the check below, so mdatagen's output stays as it writes it.
LICENSED = $$(git ls-files '*.go' '*.sh')
LICENSE_HOLDER := The oomsight Authors
# porto: the import comment on every package clause, as contrib has them
# (internal packages too; generated files and testdata are skipped by porto).
PORTO_FLAGS := --include-internal --skip-dirs '^_build$$'

# Every Go module of the repository (contrib's gotidy check runs on each).
MODULES := . deploy deploy/operator internal/tools internal/kube internal/kube/coredns internal/kube/kuberouter internal/kube/helm internal/kube/containerd internal/bench/cadvisor

## check-format: gofmt (the toolchain's, GOTOOLCHAIN), the SPDX header of every Go and shell file
## (addlicense -check, then the exact two lines), porto's import comments
## (`make fix-style` repairs these three), US spelling in the Markdown docs
## (misspell) and `go mod tidy -diff` in every module
check-format:
	@bad=$$($$($(GO) env GOROOT)/bin/gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$bad" ]; then echo "not gofmt-clean (run make fix-style):"; echo "$$bad"; exit 1; fi
	@$(TOOL) addlicense -check -s=only -y "" -c "$(LICENSE_HOLDER)" $(LICENSED) || \
		{ echo "files above lack a license header: run make fix-style"; exit 1; }
	@bad=""; for f in $(LICENSED); do \
		head -n 5 "$$f" | grep -Eq '^// Code generated .* DO NOT EDIT\.$$' && continue; \
		head -n 5 "$$f" | grep -qx '[/#]* *Copyright $(LICENSE_HOLDER)' && \
		head -n 6 "$$f" | grep -qx '[/#]* *SPDX-License-Identifier: Apache-2.0' || bad="$$bad $$f"; \
	done; \
	if [ -n "$$bad" ]; then echo "no '$(LICENSE_HOLDER)' + 'SPDX-License-Identifier: Apache-2.0' header:$$bad"; exit 1; fi
	@$(TOOL) porto -l $(PORTO_FLAGS) . || { echo "import comments missing: run make fix-style"; exit 1; }
	@$(TOOL) misspell -error -locale US $$(git ls-files '*.md') || { echo "US spelling in the docs, as contrib's misspell check wants"; exit 1; }
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy -diff) || { echo "$$m/go.mod is not tidy: cd $$m && go mod tidy"; exit 1; }; done

## fix-style: the mechanical changes the checks ask for, applied: SPDX
## headers (addlicense), import comments (porto), gci + gofumpt (golangci-lint
## fmt with .golangci.yml); rerun after a merge
fix-style:
	$(TOOL) addlicense -s=only -y "" -c "$(LICENSE_HOLDER)" $(LICENSED)
	$(TOOL) porto -w $(PORTO_FLAGS) .
	$(TOOL) golangci-lint fmt ./...

vet:
	$(GO) vet ./...
	cd deploy && $(GO) vet ./...
	cd deploy/operator && $(GO) vet ./...

## rules: the Prometheus alert rules of deploy/prometheus, checked and unit
## tested with promtool (Debian's prometheus package)
rules: deps-test
	promtool check rules deploy/prometheus/oomsight-rules.yaml
	cd deploy/prometheus && promtool test rules oomsight-rules.test.yaml oomsight-oom-eta.test.yaml

## lint: golangci-lint with .golangci.yml (opentelemetry-collector-contrib's
## configuration: its linters, gci + gofumpt) on both modules with Go code;
## the root module also for Windows and macOS without its tests (files of
## one GOOS are unseen by the others; the tests need cgroups, a pty or
## /dev/kmsg, and deploy/ is a Linux cluster harness), as make cross builds it
LINT_GOOS := windows darwin
lint:
	@lint=$$($(TOOL) -n golangci-lint) || exit 1; \
	echo "golangci-lint GOOS=linux"; \
	$$lint run ./... && (cd deploy && $$lint run ./...) || exit 1; \
	for os in $(LINT_GOOS); do \
		echo "golangci-lint GOOS=$$os, root module without tests"; \
		GOOS=$$os $$lint run --tests=false ./... || exit 1; \
	done

## cross: the whole module builds for macOS and Windows, as a contrib
## component must: the CLI runs there (people paste kernel logs on their
## laptops), the receiver is a stub that fails Start outside Linux, and
## Linux-only I/O lives in _linux.go files
cross:
	@for p in darwin/amd64 darwin/arm64 windows/amd64 linux/arm64; do \
		echo "cross-compiling for $$p"; \
		GOOS=$${p%/*} GOARCH=$${p#*/} CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/oomsight || exit 1; \
		GOOS=$${p%/*} GOARCH=$${p#*/} CGO_ENABLED=0 $(GO) build ./... || exit 1; \
	done

## fuzz: every fuzz target (found by name in the tests) for FUZZTIME each;
## a crash is saved under the package's testdata/fuzz and becomes a
## regression test of the ordinary test run. fuzz-short: 3 s each (CI).
## Go before 1.27 can end a duration-limited run with "context deadline
## exceeded" and no failing input (its coordinator's race, golang/go#75804):
## such a run is tried once more; a failing input always fails.
FUZZTIME ?= 60s
fuzz:
	@set -e -o pipefail; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' internal cmd receiver); do \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzzing $$name in ./$$(dirname $$f) for $(FUZZTIME)"; \
			if ! $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f) 2>&1 | tee /tmp/oomsight-fuzz.log; then \
				if grep -q 'context deadline exceeded' /tmp/oomsight-fuzz.log && ! grep -q 'Failing input written' /tmp/oomsight-fuzz.log; then \
					echo "go's fuzzer stopped on its own deadline without a failing input (golang/go#75804); once more"; \
					$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f); \
				else exit 1; fi; \
			fi; \
		done; \
	done

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3s

## soak: the churn soak for 60 s (make test runs soak-short, 30 s):
## prints one SOAK line (cgroups created, scrapes, leaks, RSS growth, kills
## and records)
soak:
	set -o pipefail; CI=true OOMSIGHT_SOAK_SECONDS=$${OOMSIGHT_SOAK_SECONDS:-60} $(GO) test -count=1 -v -run '^TestChurnSoak$$' -timeout 10m ./internal/testing/soak/ | grep -E '^(SOAK|---|ok|FAIL|PASS)|Error'

soak-short:
	@$(MAKE) --no-print-directory soak OOMSIGHT_SOAK_SECONDS=30

## unit: every Go test outside internal/testing (cgroup tests need root;
## CI=true turns a missing prerequisite into a failure); needs nothing built
# internal/testing holds the helpers and the tests that need more than the
# module: internal/testing/e2e runs in make e2e (the built distribution),
# internal/testing/e2ev2 in make e2e-v2 (its in-VM tests only run inside the
# VM), internal/testing/benchv2 in make bench-v2-short (it boots the same VM;
# qemuvm, which boots it, has no tests of its own), internal/testing/soak in make soak-short (it measures RSS, which -race
# distorts). cgrouptest and otlptest have no tests of their own.
unit: deps-test
	$(GO) test -count=1 -race $$($(GO) list ./... | grep -v /internal/testing/)

## e2e: the built distribution end to end (needs root): its configs, the
## ocb manifest, OTLP and Prometheus output, real OOM kills, the dashboard
e2e: build deps-test
	$(GO) test -count=1 -race ./internal/testing/e2e/

## e2e-v2: cgroup v2 end to end on a real kernel (Debian's cloud kernel in
## qemu, software emulation; installs qemu-system-x86, linux-image-cloud-amd64
## and busybox-static with apt-get when missing; needs root)
e2e-v2: deps
	OOMSIGHT_E2E_V2=1 $(GO) test -count=1 -run '^(TestCgroupV2InVM|TestParseConsole|TestVersionLess)$$' -v -timeout 10m ./internal/testing/e2ev2/

## bench-v2: what a cgroup v2 node costs (needs root; about 15 minutes):
## make bench's scrape, fast pass and pinned-at-limit benchmarks, the same
## static test binaries on 250 Kubernetes-shaped cgroups with a live process
## in each, first on the host (v1), then in make e2e-v2's VM (cgroup v2, 2 GiB,
## 2 CPUs, software emulation: only ratios mean anything there); prints both
## sides' BENCH lines (each says hierarchy=) and BENCH compare lines;
## docs/performance.md and internal/testing/benchv2/README.md
BENCHV2_TEST := OOMSIGHT_BENCH_V2=1 $(GO) test -count=1 -v -run '^(TestBenchV2|TestParseVM|TestCompare|TestWorkload)$$' ./internal/testing/benchv2/
BENCHV2_GREP := grep --line-buffered -E '^(BENCH|---|ok|FAIL|PASS|panic)|Error|_test.go:| vm: '
bench-v2: deps
	set -o pipefail; $(BENCHV2_TEST) -timeout 60m | $(BENCHV2_GREP)

## bench-v2-short: the same with 20 cgroups, one round of each benchmark
## and a 3 s pinned window (make test runs it, so that CI keeps it working;
## its figures mean nothing)
bench-v2-short: deps
	set -o pipefail; OOMSIGHT_BENCH_CGROUPS=20 OOMSIGHT_BENCHV2_HOST_TIME=1x OOMSIGHT_BENCHV2_VM_TIME=1x \
		OOMSIGHT_BENCH_PINNED_SECONDS=3 OOMSIGHT_BENCHV2_VM_TIMEOUT=300 $(BENCHV2_TEST) -timeout 15m | $(BENCHV2_GREP)

## deploy: the Kubernetes manifests (deploy/, a module of its own): strict
## decoding into the k8s.io/api types, `otelcol-oomsight validate` of the
## agent configs, and the DaemonSet's pod run for real by podman kube play
## (the image from make image, a workload OOM-killed at 64 MiB, a restart);
## deploy/e2ek8s and e2ek8svm are left to e2e-k8s and e2e-k8s-vm (the
## workload program's tests run here: root, a memory cgroup)
deploy: image
	cd deploy && $(GO) test -count=1 -v -timeout 10m -skip '^TestUpstream' $$($(GO) list ./... | grep -v -E '/e2ek8s(vm)?$$')

## helm: the helm CLI of HELM_VERSION from its Go module (internal/kube/helm,
## a module of its own) into _build/helm; rebuilt only when the version changes
HELM_VERSION := $(shell awk '$$1=="helm.sh/helm/v4" {print $$2}' internal/kube/helm/go.mod)
HELM         := $(BUILD)/helm/helm
helm: $(BUILD)/helm/.built-$(HELM_VERSION)
$(BUILD)/helm/.built-$(HELM_VERSION):
	@rm -rf $(BUILD)/helm && mkdir -p $(BUILD)/helm
	@echo "building helm $(HELM_VERSION) into $(BUILD)/helm (cold: several minutes)"
	cd internal/kube/helm && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X helm.sh/helm/v4/internal/version.version=$(HELM_VERSION)' -o $(abspath $(HELM)) helm.sh/helm/v4/cmd/helm
	@touch $@

## operator: deploy/operator's OpenTelemetryCollector against the
## Operator's CRD (v1beta1) as the API server applies it. The CRD comes from
## the Operator's Go module (OTEL_OPERATOR_VERSION, its zip's hash pinned as
## OTEL_OPERATOR_SUM): config/crd/bases of that release, copied to
## _build/upstream (OTEL_OPERATOR_CRD=<file> takes another)
OTEL_OPERATOR_VERSION := v0.153.0
OTEL_OPERATOR_SUM     := h1:9aCEMDxwT3t50nVv9aun+IXNRnvtJYlnO4Rjl8RfHNQ=
OTEL_OPERATOR_CRD     ?= $(BUILD)/upstream/opentelemetry-operator-$(OTEL_OPERATOR_VERSION)/opentelemetry.io_opentelemetrycollectors.yaml
$(BUILD)/upstream/opentelemetry-operator-$(OTEL_OPERATOR_VERSION)/opentelemetry.io_opentelemetrycollectors.yaml:
	@mkdir -p $(@D)
	@json=$$($(GO) mod download -json github.com/open-telemetry/opentelemetry-operator@$(OTEL_OPERATOR_VERSION)) || { echo "the Operator's module $(OTEL_OPERATOR_VERSION): $$json"; exit 1; }; \
	sum=$$(printf '%s' "$$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",*$$/\1/p'); \
	dir=$$(printf '%s' "$$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$$/\1/p'); \
	test "$$sum" = "$(OTEL_OPERATOR_SUM)" || { echo "the Operator's module $(OTEL_OPERATOR_VERSION): hash $$sum, pinned $(OTEL_OPERATOR_SUM)"; exit 1; }; \
	cp "$$dir/config/crd/bases/opentelemetry.io_opentelemetrycollectors.yaml" $@.tmp && chmod 644 $@.tmp && mv $@.tmp $@
	@echo "the Operator's CRD $(OTEL_OPERATOR_VERSION) ($(OTEL_OPERATOR_SUM)): $@"
operator: $(OTEL_OPERATOR_CRD)
	cd deploy/operator && OOMSIGHT_OPERATOR_CRD=$(abspath $(OTEL_OPERATOR_CRD)) $(GO) test -count=1 -v .

## installers-if-present: make installers when the upstream chart is on
## this machine; otherwise one line says that it did not run and why (make
## test runs this: the chart cannot be fetched by the build, see
## docs/installing.md)
installers-if-present:
	@if test -e "$(OTEL_CHART)"; then $(MAKE) --no-print-directory installers; \
	else echo "INSTALLERS NOT RUN: the upstream chart ($(OTEL_CHART)) is not on this machine (docs/installing.md)"; fi

## installers: helm lint and helm template of the OpenTelemetry Collector
## chart (OTEL_CHART, a directory or .tgz of chart OTEL_CHART_VERSION) with
## each values file of deploy/helm, the rendered config through
## `otelcol-oomsight validate`. The chart is not in this repository: no
## chart repository (nor a Go module holding it) is reachable from where it
## is built (docs/installing.md says how to get it)
OTEL_CHART_VERSION    := 0.170.0
# Where the chart is looked for: ../shared/upstream (beside the checkout,
# as CI has ../shared) when it exists, else _build/upstream.
UPSTREAM          ?= $(or $(wildcard ../shared/upstream),$(BUILD)/upstream)
OTEL_CHART        ?= $(UPSTREAM)/opentelemetry-collector-$(OTEL_CHART_VERSION)
installers: build helm
	@test -e "$(OTEL_CHART)" || { echo "OTEL_CHART=$(OTEL_CHART): no such chart; see docs/installing.md"; exit 1; }
	@$(HELM) show chart $(OTEL_CHART) | grep -qx 'version: $(OTEL_CHART_VERSION)' || { echo "$(OTEL_CHART) is not chart version $(OTEL_CHART_VERSION)"; exit 1; }
	cd deploy && OOMSIGHT_HELM=$(abspath $(HELM)) OOMSIGHT_OTEL_CHART=$(abspath $(OTEL_CHART)) $(GO) test -count=1 -v -run '^TestUpstreamHelmChart$$' .

## kube: the Kubernetes binaries (kube-apiserver, kube-controller-manager,
## kube-scheduler, kubelet, kube-proxy, kubectl) of KUBE_VERSION from
## k8s.io/kubernetes (internal/kube, a module of its own) and CoreDNS from
## its Go module, into _build/kube; rebuilt only when the version changes
KUBE_VERSION := $(shell awk '$$1=="k8s.io/kubernetes" {print $$2}' internal/kube/go.mod)
KUBE_MINOR   := $(word 2,$(subst ., ,$(KUBE_VERSION)))
KUBE_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(KUBE_MINOR) \
	-X k8s.io/component-base/version.gitTreeState=clean \
	-X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z
COREDNS_VERSION := $(shell awk '$$1=="github.com/coredns/coredns" {print $$2}' internal/kube/coredns/go.mod)
KUBE_CMDS := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
kube: $(BUILD)/kube/.built-$(KUBE_VERSION)-coredns-$(COREDNS_VERSION)
$(BUILD)/kube/.built-$(KUBE_VERSION)-coredns-$(COREDNS_VERSION):
	@rm -rf $(BUILD)/kube && mkdir -p $(BUILD)/kube
	@echo "building Kubernetes $(KUBE_VERSION) ($(KUBE_CMDS)) and CoreDNS $(COREDNS_VERSION) into $(BUILD)/kube (cold: several minutes)"
	cd internal/kube && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $(abspath $(BUILD))/kube/ $(addprefix k8s.io/kubernetes/cmd/,$(KUBE_CMDS))
	cd internal/kube/coredns && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(abspath $(BUILD))/kube/coredns github.com/coredns/coredns
	@touch $@

## kube-router: the cluster's NetworkPolicy enforcer (kube-router in
## firewall-only mode, internal/kube/kuberouter, a module of its own) into
## _build/kube-router; rebuilt only when its version changes (cold: about
## 5 minutes)
KUBEROUTER_VERSION := $(shell awk '{for (i = 1; i < NF; i++) if ($$i == "github.com/cloudnativelabs/kube-router/v2") {print $$(i+1); exit}}' internal/kube/kuberouter/go.mod)
kube-router: $(BUILD)/kube-router/.built-$(KUBEROUTER_VERSION)
$(BUILD)/kube-router/.built-$(KUBEROUTER_VERSION):
	@rm -rf $(BUILD)/kube-router && mkdir -p $(BUILD)/kube-router
	@echo "building kube-router $(KUBEROUTER_VERSION) into $(BUILD)/kube-router (cold: about 5 minutes)"
	cd internal/kube/kuberouter && CGO_ENABLED=0 $(GO) build -trimpath \
		-ldflags '-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$(KUBEROUTER_VERSION)' \
		-o $(abspath $(BUILD))/kube-router/kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
	@touch $@

# What the cluster runs besides the binaries above (command:package);
# ipset is kube-router's.
KUBE_DEBS := etcd:etcd-server containerd:containerd ctr:containerd runc:runc \
             /usr/lib/cni/bridge:containernetworking-plugins conntrack:conntrack \
             iptables:iptables socat:socat ipset:ipset
KUBECLUSTER := cd deploy && $(GO) run ./kubecluster/cmd/kubecluster

## NODES: the cluster's nodes: v1 (the host: cgroup v1, cgroupfs,
## containerd 1.6), v2 (a qemu VM: cgroup v2, systemd, containerd 2; the
## control plane stays on the host) or both; make k8s-up starts v1 unless
## told, make e2e-k8s proves both
K8S_UP_NODES := $(or $(NODES),v1)
E2E_K8S_NODES := $(or $(NODES),both)
# What the VM node needs on the host (command:package).
VM_DEBS := qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mkfs.ext4:e2fsprogs debootstrap:debootstrap
vm_prereqs = $(if $(filter v2 both,$(1)),containerd2 vmnode-image)
k8s_debs = $(KUBE_DEBS) $(if $(filter v2 both,$(1)),$(VM_DEBS))

## containerd2: containerd 2 (containerd, containerd-shim-runc-v2, ctr) of
## CONTAINERD_VERSION from its Go module (internal/kube/containerd, a
## module of its own) into _build/containerd-<version>, for the VM node;
## rebuilt only when the version changes
CONTAINERD_VERSION := $(shell awk '$$1=="github.com/containerd/containerd/v2" {print $$2}' internal/kube/containerd/go.mod)
CONTAINERD_PKG := github.com/containerd/containerd/v2
containerd2: $(BUILD)/containerd-$(CONTAINERD_VERSION)/.built
$(BUILD)/containerd-$(CONTAINERD_VERSION)/.built:
	@rm -rf $(BUILD)/containerd-v* && mkdir -p $(dir $@)
	@echo "building containerd $(CONTAINERD_VERSION) into $(dir $@)"
	cd internal/kube/containerd && CGO_ENABLED=0 $(GO) build -trimpath -tags 'no_btrfs no_zfs no_devmapper' \
		-ldflags '-s -w -X $(CONTAINERD_PKG)/version.Version=$(CONTAINERD_VERSION)' -o $(abspath $(dir $@)) \
		$(addprefix $(CONTAINERD_PKG)/cmd/,containerd containerd-shim-runc-v2 ctr)
	@touch $@

## vmnode-image: the VM node's root filesystem (Debian 12 by debootstrap,
## systemd, runc, CNI plugins, the cloud kernel) into _build/vmnode-<key>,
## keyed by a hash of its package list and files; rebuilt only when the
## key changes (cold: about 11 minutes; needs root)
vmnode-image:
	@$(MAKE) --no-print-directory deps DEB_TOOLS="$(VM_DEBS)"
	$(KUBECLUSTER) vm-image

## e2e-k8s: a real Kubernetes of the nodes NODES names (default both: the
## host's v1 node and the VM's v2 node; make kube, make kube-router as the
## NetworkPolicy enforcer, Debian's etcd, containerd, runc, CNI plugins
## and ipset; containerd 2 and the VM image for v2) runs deploy/kubernetes/
## as shipped and workloads OOM-killed on each node; one E2EK8S line per
## proof and node (needs root; docs/tested-on-kubernetes.md)
e2e-k8s: image kube kube-router $(call vm_prereqs,$(E2E_K8S_NODES))
	@$(MAKE) --no-print-directory deps DEB_TOOLS="$(call k8s_debs,$(E2E_K8S_NODES))"
	@if test -e $(abspath $(OTEL_CHART)); then $(MAKE) --no-print-directory helm; fi
	@echo "e2e-k8s: NODES=$(E2E_K8S_NODES); full output in /tmp/oomsight-e2e-k8s.log"
	set -o pipefail; cd deploy && NODES=$(E2E_K8S_NODES) OOMSIGHT_E2E_K8S=1 OOMSIGHT_HELM=$(abspath $(HELM)) \
		OOMSIGHT_OTEL_CHART=$$(test -e $(abspath $(OTEL_CHART)) && echo $(abspath $(OTEL_CHART))) $(GO) test -count=1 -v -timeout 60m ./e2ek8s/ 2>&1 | tee /tmp/oomsight-e2e-k8s.log | grep --line-buffered -E '^(E2EK8S|k8s:|---|ok|FAIL|PASS|panic)'

## e2e-k8s-vm: the VM node proved (make k8s-up NODES=both, then the VM's
## Node Ready, cgroup v2 with the kubelet's systemd layout inside it, pods
## on each node reaching pods and Services on the other; needs root;
## docs/tested-on-kubernetes.md)
e2e-k8s-vm: image kube kube-router containerd2 vmnode-image
	@$(MAKE) --no-print-directory deps DEB_TOOLS="$(KUBE_DEBS) $(VM_DEBS)"
	set -o pipefail; cd deploy && OOMSIGHT_E2E_K8S_VM=1 $(GO) test -count=1 -v -timeout 30m ./e2ek8svm/ 2>&1 | tee /tmp/oomsight-e2e-k8s-vm.log | grep --line-buffered -E '(E2EK8SVM|k8s:|vm image|---|^ok|FAIL|PASS|panic)'

## k8s-up: start the cluster for a person, the nodes NODES names (prints
## the kubeconfig path); k8s-down stops it and removes everything it made
k8s-up: image kube kube-router $(call vm_prereqs,$(K8S_UP_NODES))
	@$(MAKE) --no-print-directory deps DEB_TOOLS="$(call k8s_debs,$(K8S_UP_NODES))"
	NODES=$(K8S_UP_NODES) $(KUBECLUSTER) up

k8s-down:
	$(KUBECLUSTER) down

## test: everything CI runs
test: deps-test check-generate check-otel check-format vet lint vulncheck rules cross unit e2e fuzz-short soak-short e2e-v2 bench-v2-short deploy operator installers-if-present e2e-k8s e2e-k8s-vm bench-short bench-peers-short

## bench: every BENCH figure of docs/performance.md (needs root; about 5 minutes):
## scrape cost against the kernel floor and containerd/cgroups at 100 and
## 1000 real cgroups, discovery, the fast pass, a cgroup pinned at its
## limit, a process snapshot of 50 processes at their cgroup's limit, the distribution's CPU and RSS on 1000 cgroups for 60 s in three
## setups, kill -> OOM record latency over 30 real OOM kills, and a
## memory.oom.group kill of 10,000 and 20,000 members (linear cost)
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./internal/cgroupfs/
	OOMSIGHT_BENCH_CGROUPS=100 $(GO) test -run '^$$' -bench BenchmarkScrape -benchtime 6s ./receiver/cgroupmemoryreceiver/
	OOMSIGHT_BENCH_CGROUPS=1000 $(GO) test -run '^$$' -bench BenchmarkScrape -benchtime 6s ./receiver/cgroupmemoryreceiver/
	OOMSIGHT_BENCH_CGROUPS=100 $(GO) test -run '^$$' -bench BenchmarkFastPass -benchmem ./internal/sampler/
	OOMSIGHT_BENCH_CGROUPS=1000 $(GO) test -run '^$$' -bench BenchmarkFastPass -benchmem ./internal/sampler/
	$(GO) test -run '^$$' -bench BenchmarkPinnedAtLimit -benchtime 1x ./receiver/cgroupmemoryreceiver/
	$(GO) test -run '^$$' -bench BenchmarkSnapshotPinned -benchtime 200x ./internal/procsnap/
	$(GO) test -run '^$$' -bench BenchmarkOOMKillToRecord -benchtime 30x ./receiver/cgroupmemoryreceiver/
	OOMSIGHT_BENCH_MEMBERS=10000,20000 $(GO) test -run '^$$' -bench BenchmarkOOMGroupKill -benchtime 1x ./receiver/cgroupmemoryreceiver/internal/oompipeline/
	OOMSIGHT_BENCH_CGROUPS=1000 OOMSIGHT_BENCH_SECONDS=60 $(GO) test -run '^$$' -bench BenchmarkDistroProcess -benchtime 1x -timeout 20m ./internal/testing/e2e/

## bench-short: the same benchmarks small and brief (100 cgroups, a few
## iterations, 12 s process runs), so that CI keeps them working
bench-short: build
	OOMSIGHT_BENCH_CGROUPS=100 $(GO) test -run '^$$' -bench 'BenchmarkScrape|BenchmarkFastPass' -benchtime 3x ./receiver/cgroupmemoryreceiver/ ./internal/sampler/
	$(GO) test -run '^$$' -bench BenchmarkOOMKillToRecord -benchtime 3x ./receiver/cgroupmemoryreceiver/
	OOMSIGHT_BENCH_MEMBERS=1000,2000 $(GO) test -run '^$$' -bench BenchmarkOOMGroupKill -benchtime 1x ./receiver/cgroupmemoryreceiver/internal/oompipeline/
	$(GO) test -run '^$$' -bench BenchmarkSnapshotPinned -benchtime 10x ./internal/procsnap/
	OOMSIGHT_BENCH_CGROUPS=100 OOMSIGHT_BENCH_SECONDS=12 $(GO) test -run '^$$' -bench BenchmarkDistroProcess -benchtime 1x ./internal/testing/e2e/

## bench-peers: cAdvisor and otelcol-oomsight side by side (needs root;
## about 40 minutes with the defaults): each alone, one after the other,
## on the same real cgroups (1000 and 100, a sleeping process charged with
## 1 MiB in each), three alternations, CPU over 60 s after a 15 s warm-up
## and peak RSS (VmHWM) of the whole process; the driver scrapes /metrics
## every 10 s or receives the OTLP. Prints BENCHPEER lines (ratios, cAdvisor
## over oomsight) and BENCHPEER_RAW lines (every run); docs/performance.md.
## OOMSIGHT_PEERS_FEATURES=all adds the default with each feature off
## (BENCHFEATURE lines; about 14 more minutes a cgroup count and round).
## OOMSIGHT_PEERS_AGENT=<manifest> measures another agent.yaml in the
## shipped setups; OOMSIGHT_PEERS_BASELINE=<manifest> adds its shipped
## setups beside them, old and new in the same alternations.
## cAdvisor is its library at CADVISOR_VERSION (internal/bench/cadvisor, a
## module of its own) built into _build/cadvisor-<version>, rebuilt only
## when the version or its main.go changes.
CADVISOR_VERSION := $(shell awk '$$1=="github.com/google/cadvisor/lib" {print $$2}' internal/bench/cadvisor/go.mod)
CADVISOR         := $(BUILD)/cadvisor-$(CADVISOR_VERSION)/cadvisor
PEERS_TEST       := $(GO) test -run '^$$' -bench '^BenchmarkPeers$$' -benchtime 1x -timeout 4h ./internal/testing/e2e/
$(CADVISOR): internal/bench/cadvisor/main.go internal/bench/cadvisor/go.mod internal/bench/cadvisor/go.sum
	@mkdir -p $(dir $@)
	cd internal/bench/cadvisor && $(GO) build -trimpath -o $(abspath $@) .

bench-peers: build $(CADVISOR)
	@echo "bench-peers: load before the run: $$(cat /proc/loadavg)"
	set -o pipefail; OOMSIGHT_PEERS_CADVISOR=$(abspath $(CADVISOR)) $(PEERS_TEST) | grep --line-buffered -E '^(BENCHPEER|BENCHFEATURE|---|ok|FAIL|PASS|panic)|Error|_test.go:'
	@echo "bench-peers: load after the run: $$(cat /proc/loadavg)"

## bench-peers-short: the same with 20 cgroups, one round, 2 s warm-up and
## 5 s windows, one feature off (make test runs it, about 45 s: the
## harness keeps working; its figures mean nothing)
bench-peers-short: build $(CADVISOR)
	set -o pipefail; OOMSIGHT_PEERS_CADVISOR=$(abspath $(CADVISOR)) OOMSIGHT_PEERS_CGROUPS=20 OOMSIGHT_PEERS_WARMUP=2 \
		OOMSIGHT_PEERS_WINDOW=5 OOMSIGHT_PEERS_ALTERNATIONS=1 OOMSIGHT_PEERS_SCRAPE=2 OOMSIGHT_PEERS_FEATURES=kernel_log_reader \
		$(PEERS_TEST) | grep --line-buffered -E '^(BENCHPEER|BENCHFEATURE|---|ok|FAIL|PASS|panic)|Error|_test.go:'

clean:
	rm -rf $(BUILD)

include maintenance.mk

FORCE:
