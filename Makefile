# scimguard: set up, build, run, test, benchmark and package. `make help` lists the targets by group.
#
# A fresh machine needs rustup/cargo, python3, node and apt-get (Debian): every target installs what
# it uses when it is missing, into the project-local .venv/ and .tools/, target/, or from Debian.
# Stamp files keep re-runs fast. Sections: setup, build, run, test, bench, deploy, tools; each
# variable is set once, in the section that owns it (the first one holds what several share).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# ---- shared by every section ------------------------------------------------------------------
PYTHON        ?= python3
POLICY        ?= policies/default.json
VENV          := .venv
VPY           := $(VENV)/bin/python
ENVOY         := $(VENV)/bin/envoy
RUN_DIR       := .run
TOOLS         := .tools
WASM_TARGET   := wasm32-wasip1
WASM          := target/$(WASM_TARGET)/release/scimguard.wasm
# Cargo arguments of the filter (its build, clippy and profile): the library for wasm32-wasip1 with
# only the `filter` feature.
FILTER_ARGS   := --target $(WASM_TARGET) --lib --no-default-features --features filter
CARGO_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# Debian packages are installed only where a target finds its tool missing.
APT_INSTALL   := apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

# `##@` lines head the sections, here and in `make help`.
.PHONY: help
help: ## list the targets, by group
	@awk 'BEGIN {FS = ":.*## "} /^##@ / {printf "\n%s\n", substr($$0, 5)} /^[a-z0-9-]+:.*## / {printf "  %-20s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Setup: what a fresh machine needs
REQS      := tests/e2e/requirements.txt
REQS_LOCK := tests/e2e/requirements.lock
# Rustup targets: the filter's and the web build's.
RUST_TARGETS := $(WASM_TARGET) wasm32-unknown-unknown
empty :=
space := $(empty) $(empty)
# The stamp names the targets, so adding one re-runs rustup.
RUSTUP_STAMP := target/.stamp-rustup-$(subst $(space),-,$(strip $(RUST_TARGETS)))
# Debian packages a test needs: Redis and protoc for the fleet test (`make limitador`, test_fleet.py).
APT_PACKAGES := redis-server protobuf-compiler

.PHONY: deps venv rust-targets apt-deps clean

deps: rust-targets venv apt-deps ## everything a fresh machine needs

venv: $(VENV)/.stamp ## .venv with Envoy 1.40, scim2-server, scim2-cli, pytest (pinned)
$(VENV)/.stamp: $(REQS) $(REQS_LOCK)
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check -r $(REQS) -c $(REQS_LOCK)
	$(ENVOY) --version
	touch $@

rust-targets: $(RUSTUP_STAMP) ## rustup target add $(RUST_TARGETS)
target/.stamp-rustup-%:
	rustup target add $(RUST_TARGETS)
	mkdir -p target && touch $@

# dpkg first: a machine that has the packages never runs apt-get update.
apt-deps: $(if $(APT_PACKAGES),$(RUN_DIR)/.stamp-apt) ## apt packages the tests need (if any)
$(RUN_DIR)/.stamp-apt:
	dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || \
	  { $(APT_INSTALL) $(APT_PACKAGES); }
	mkdir -p $(RUN_DIR) && touch $@

clean: ## remove build output, .venv and .run
	cargo clean
	rm -rf $(VENV) $(RUN_DIR)

##@ Build: the filter, the CLI, the web engine
# The filter is built for speed (opt-level 3), then optimised again by binaryen's wasm-opt. Measured
# trade-off (`make bench-size`; what else was tried: tests/bench/results/size-memory-findings.md):
# opt-level 3 682 kB; s 550 kB and 1.2x the guest's CPU per PATCH in V8; z 478 kB and 1.9x. No flag
# reaches 450 kB; those tried at opt-level 3 (per-crate "s" for the cold dependencies, a lower LLVM
# inline threshold, wasm-opt -Os) save 0.4-38 kB and cost up to 11% per PATCH. Per-request CPU is
# what operators pay on every write; `make wasm WASM_OPT_LEVEL=z` builds the smaller one.
WASM_OPT_LEVEL ?= 3
WASM_OPT       := wasm-opt
# After -O3: --merge-similar-functions folds functions that differ only in constants (the copies of
# one generic, e.g. hashbrown's reserve_rehash per table type) into one taking them as parameters;
# --const-hoisting loads a large constant used many times in a function from a local (TurboFan sees
# the same constant). About 18 kB smaller; the engine bench in V8 showed no change in µs/request.
WASM_OPT_SIZE  := --merge-similar-functions --const-hoisting
WASM_OPT_FLAGS := $(if $(filter z s,$(WASM_OPT_LEVEL)),-Oz,-O3) $(WASM_OPT_SIZE) --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int

# The web build: the engine with wasm-bindgen (feature `web`, never with `filter`) for the browser
# (target/web/, a static site, the playground) and for Node (target/node/, a CommonJS package).
WEB_TARGET := wasm32-unknown-unknown
WEB_ARGS   := --release --lib --target $(WEB_TARGET) --no-default-features --features web
WEB_WASM   := target/$(WEB_TARGET)/release/scimguard.wasm
WEB_OUT    := target/web
NODE_OUT   := target/node
WB_FLAGS   := --remove-name-section --remove-producers-section
# wasm-bindgen-cli must be the exact version of the crate's wasm-bindgen (`=x.y.z` in Cargo.toml).
WASM_BINDGEN_VERSION := $(shell sed -n 's/^wasm-bindgen = .*"=\([0-9.]*\)".*/\1/p' Cargo.toml)
WASM_BINDGEN         := $(TOOLS)/bin/wasm-bindgen
WASM_BINDGEN_STAMP   := $(TOOLS)/.stamp-wasm-bindgen-$(WASM_BINDGEN_VERSION)

.PHONY: wasm cli web

wasm: rust-targets $(RUN_DIR)/.stamp-binaryen ## the filter: target/wasm32-wasip1/release/scimguard.wasm
	CARGO_PROFILE_RELEASE_OPT_LEVEL=$(WASM_OPT_LEVEL) cargo rustc --release $(FILTER_ARGS) --crate-type cdylib
	$(WASM_OPT) $(WASM_OPT_FLAGS) $(WASM) -o $(WASM).opt && mv $(WASM).opt $(WASM)
	@ls -l $(WASM)

cli: ## the CLI: target/release/scimguard
	cargo build --release

# The release profile strips everything, including the `target_features` section wasm-bindgen reads
# to pick its glue; keep it (strip debuginfo only), and let wasm-bindgen drop the names instead.
web: rust-targets $(WASM_BINDGEN_STAMP) ## playground in target/web/, Node package in target/node/
	CARGO_PROFILE_RELEASE_STRIP=debuginfo cargo rustc $(WEB_ARGS) --crate-type cdylib
	$(WASM_BINDGEN) --target web --no-typescript $(WB_FLAGS) --out-dir $(WEB_OUT)/pkg $(WEB_WASM)
	$(WASM_BINDGEN) --target nodejs $(WB_FLAGS) --out-dir $(NODE_OUT) $(WEB_WASM)
	cp src/web/index.html src/web/app.js src/web/style.css $(WEB_OUT)/
	rm -rf $(WEB_OUT)/samples && cp -r src/web/samples $(WEB_OUT)/samples
	cp $(POLICY) $(WEB_OUT)/default-policy.json
	printf '{"name":"scimguard","version":"%s","description":"scimguard policy engine (wasm)","main":"scimguard.js","types":"scimguard.d.ts","license":"Apache-2.0"}\n' \
	  '$(CARGO_VERSION)' > $(NODE_OUT)/package.json
	@echo "web: $(WEB_OUT)/pkg/scimguard_bg.wasm $$(stat -c %s $(WEB_OUT)/pkg/scimguard_bg.wasm) bytes; Node package $(NODE_OUT)/"

##@ Run: the demo gateway and the playground
PLAYGROUND_PORT ?= 8765

.PHONY: run playground

run: wasm venv ## upstream on :8080 + Envoy on :10000 (admin :9901); Ctrl-C stops both
	POLICY=$(POLICY) tests/upstream/run.sh

playground: web ## serve the playground on http://127.0.0.1:8765/ (PLAYGROUND_PORT=...; Ctrl-C stops)
	@echo "playground: http://127.0.0.1:$(PLAYGROUND_PORT)/   (Node: require('./$(NODE_OUT)'))"
	$(PYTHON) -m http.server $(PLAYGROUND_PORT) --bind 127.0.0.1 --directory $(WEB_OUT)

##@ Test: `make test` is what CI runs (.ci/run)
# `make test` runs these in order: the fast Rust checks first, then Envoy, the front-ends, the
# smoke bench (counts only, never speed), the deployment artefacts and the differential oracle.
TEST_TARGETS := deps test-unit test-lint check-purity test-validate test-e2e test-web test-report \
                test-bench-smoke test-deploy test-differential

# Modules that must stay pure (no host, no I/O, no clock), and what they must never name.
PURE_PATHS := src/scim src/policy src/audit src/engine src/suite.rs src/suite src/report
IMPURE     := proxy_wasm|wasm_bindgen|std::fs|std::env|SystemTime|Instant::now|std::\{[^}]*\b(fs|env)\b
# Envoy configs shipped in the repo; each is rendered with $(POLICY) and validated. envoy.yaml
# is also rendered with every other shipped policy, so each one is proven to load in Envoy.
ENVOY_CONFIGS    := envoy.yaml $(wildcard tests/envoy/*.yaml)
SHIPPED_POLICIES := $(filter-out %.cases.json,$(wildcard policies/*.json))
# The e2e suite; narrow it with e.g. `make test-e2e E2E="tests/e2e/test_gateway.py"`.
E2E         ?= tests/e2e
PYTEST_ARGS ?= -rfE
REPORT_RUN   := $(RUN_DIR)/report
REPORT_TRAIL := $(REPORT_RUN)/trail
DEPLOY_TESTS := tests/deploy
# The differential oracle (tests/differential/README.md): seeded SCIM writes applied to scim2-server
# (in process), scimmy + scimmy-routers and scim-patch (Node), each compared with
# `scimguard eval --detail`. `make test-differential` runs a fixed sample; `make fuzz-diff N=20000
# SEED=7` a campaign into .run/differential/campaign-SEED/{report.md,findings/}.
DIFF_DIR        := tests/differential
DIFF_NODE       := $(DIFF_DIR)/node
DIFF_NODE_STAMP := $(DIFF_NODE)/node_modules/.stamp
DIFF_TEST_N     ?= 1500
DIFF_TEST_SEED  ?= 12
N               ?= 20000
SEED            ?= 1
DIFF_IMPLS      ?= scim2-server,scimmy,scim-patch

.PHONY: test $(TEST_TARGETS) test-fleet report-trail fuzz-diff

test: $(TEST_TARGETS) ## everything CI runs

test-unit: ## cargo test (the engine, the CLI, the case files) and the filter's own unit tests
	cargo test
	cargo test --lib --no-default-features --features filter filter::

test-lint: rust-targets ## clippy, native and filter builds, -D warnings
	cargo clippy --all-targets -- -D warnings
	cargo clippy $(FILTER_ARGS) -- -D warnings
	cargo clippy --lib --tests --no-default-features --features filter -- -D warnings

check-purity: ## the pure core never names host, I/O or clock APIs
	@hits=$$(grep -rnE '$(IMPURE)' $(wildcard $(PURE_PATHS)) | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true); \
	if [ -n "$$hits" ]; then \
	  echo "check-purity: FAILED: pure modules ($(PURE_PATHS)) must not name proxy_wasm, wasm_bindgen,"; \
	  echo "  std::fs, std::env, SystemTime or Instant::now (time, config and I/O come in as parameters):"; \
	  echo "$$hits" | sed 's/^/  /'; exit 1; \
	fi; echo "check-purity: ok ($(PURE_PATHS))"

test-validate: wasm venv ## envoy --mode validate on every shipped config and policy (loads the wasm)
	@validate() { \
	  local config=$$1 policy=$$2 out=$(RUN_DIR)/validate/$$(basename $$1 .yaml)--$$(basename $$2 .json).yaml; \
	  $(VPY) tests/envoy/render.py --template $$config --policy $$policy --out $$out; \
	  if $(ENVOY) --mode validate --disable-hot-restart -c $$out > $$out.log 2>&1; then \
	    echo "validate: $$config with $$policy: OK"; \
	  else \
	    grep -E '\]\[(error|critical)\]' $$out.log | tail -20 || tail -20 $$out.log; \
	    echo "validate: $$config with $$policy: FAILED (full log: $$out.log)"; return 1; \
	  fi; \
	}; \
	for config in $(ENVOY_CONFIGS); do validate $$config $(POLICY); done; \
	for policy in $(filter-out $(POLICY),$(SHIPPED_POLICIES)); do validate envoy.yaml $$policy; done

# Besides the filter and the venv: Limitador for test_fleet.py, and the image and Debian's registry
# and skopeo for test_deployed.py (the deployed shapes: code.remote, ECDS from the pulled image, the
# no-flag stall, live reload).
test-e2e: wasm venv limitador deploy-tools oci ## pytest e2e: real Envoy + scimguard.wasm + scim2-server, HTTP/1.1 and h2c
	$(VPY) -m pytest $(E2E) $(PYTEST_ARGS) -o cache_dir=$(RUN_DIR)/pytest-cache --basetemp=$(RUN_DIR)/e2e

# Part of test-e2e; this runs it alone.
test-fleet: ## two Envoys share one deprovision threshold through Limitador + Redis (tests/e2e/test_fleet.py)
	$(MAKE) test-e2e E2E=tests/e2e/test_fleet.py

test-web: web cli chromium ## Node package = native CLI on every shared case; the page in headless Chromium
	cargo clippy --target $(WEB_TARGET) --lib --no-default-features --features web -- -D warnings
	node --test tests/web/

test-report: chromium ## report: unit tests, generated trail vs expectations, dashboard in Chromium
	cargo test --lib report::
	cargo build --bin scimguard
	$(MAKE) report-trail
	$(PYTHON) tests/report/test_report.py --trail $(REPORT_TRAIL)
	$(PYTHON) tests/report/test_chromium.py --trail $(REPORT_TRAIL) --out $(REPORT_RUN)

report-trail: ## a generated audit trail (3000 users, 150 days) and its expected numbers
	rm -rf $(REPORT_TRAIL)
	$(PYTHON) tests/report/trail.py $(REPORT_TRAIL)

test-bench-smoke: bench-tools wasm venv bench-empty-filter ## the bench harness end to end, 1 short round (counts only)
	$(VPY) tests/bench/bench.py --smoke --work $(RUN_DIR)/bench-smoke-work --out $(RUN_DIR)/bench-smoke

# The Envoy proofs of the deployed manifests are e2e tests (test_deployed.py, above); these are the
# image through a registry, the manifests against the CRD schemas (SCIMGUARD_CRDS, else
# ../shared/crds beside the clone) and Envoy, and the Prometheus rules.
test-deploy: deploy-tools oci venv ## image via registry + skopeo, manifests vs CRDs and Envoy, Prometheus + promtool
	$(VPY) deploy/render.py --check
	$(VPY) -m pytest $(DEPLOY_TESTS) $(PYTEST_ARGS) -o cache_dir=$(RUN_DIR)/pytest-cache --basetemp=$(RUN_DIR)/deploy

test-differential: cli differential-deps ## differential oracle, fixed-seed sample (~1 min); fails on a gap
	$(VPY) -m pytest -q -p no:cacheprovider $(DIFF_DIR)/test_compare.py
	nice $(VPY) $(DIFF_DIR)/run.py --n $(DIFF_TEST_N) --seed $(DIFF_TEST_SEED) --impl $(DIFF_IMPLS) \
	  --findings 1 --out $(RUN_DIR)/differential/test --check

fuzz-diff: cli differential-deps ## differential campaign: N writes per implementation (N=20000 SEED=1)
	nice $(VPY) $(DIFF_DIR)/run.py --n $(N) --seed $(SEED) --impl $(DIFF_IMPLS) \
	  --findings 3 --out $(RUN_DIR)/differential/campaign-$(SEED)

##@ Bench: scimguard's cost in Envoy, side by side (docs/performance.md)
# Timed, so never part of `make test` (which runs only the counts-only smoke run, test-bench-smoke).
# `make bench` (~13 min): baseline / empty wasm floor / Lua peer / scimguard, 5 rounds, into
# tests/bench/results/latest.{json,md} and ratios.svg (committed). Run bench-size and
# bench-instructions first: its report takes in their results when measured on the same .wasm.
BENCH_APT        := wrk nghttp2-client
BENCH_EMPTY      := tests/bench/empty-filter
BENCH_EMPTY_WASM := target/bench-empty-filter/$(WASM_TARGET)/release/bench_empty_filter.wasm
BENCH_ARGS       ?=
BENCH_MEMORY_ARGS ?=
# bench-profile: the filter built with its symbol names, run under the minimal proxy-wasm host of
# tests/bench/filter-v8.mjs with `node --cpu-prof`, summarised per Rust function.
# BENCH_PROFILE_ONLY picks the workload (scim_get, entra_patch, group_patch_100, bulk_100kib).
BENCH_PROFILE_DIR  := $(RUN_DIR)/bench-profile
BENCH_PROFILE_ONLY ?= entra_patch
# bench-size measures the module's bytes with twiggy, installed from crates.io into target/tools.
TWIGGY := target/tools/bin/twiggy

.PHONY: bench bench-empty-filter bench-profile bench-instructions bench-size bench-memory

bench: bench-tools wasm venv bench-empty-filter ## overhead benchmark → tests/bench/results/ (BENCH_ARGS=...)
	@echo "bench: load average now: $$(cut -d' ' -f1-3 /proc/loadavg) (results are best on a quiet machine)"
	$(VPY) tests/bench/bench.py $(BENCH_ARGS)

bench-empty-filter: rust-targets ## the empty proxy-wasm filter (the floor) for the bench
	cargo build --release --locked --target $(WASM_TARGET) --manifest-path $(BENCH_EMPTY)/Cargo.toml \
	  --target-dir target/bench-empty-filter

bench-profile: rust-targets venv ## per-function CPU profile of the filter's guest work (node --cpu-prof)
	CARGO_PROFILE_RELEASE_STRIP=false cargo rustc --release $(FILTER_ARGS) --crate-type cdylib --target-dir target/bench-profile
	$(VPY) tests/bench/bench.py --payloads $(BENCH_PROFILE_DIR)
	rm -f $(BENCH_PROFILE_DIR)/*.cpuprofile
	node --cpu-prof --cpu-prof-dir=$(BENCH_PROFILE_DIR) tests/bench/filter-v8.mjs \
	  target/bench-profile/$(WASM_TARGET)/release/scimguard.wasm $(BENCH_PROFILE_DIR)/bench-policy.json \
	  $(BENCH_PROFILE_DIR) --only $(BENCH_PROFILE_ONLY) --seconds 2
	$(PYTHON) tests/bench/cpuprofile.py $(BENCH_PROFILE_DIR)/*.cpuprofile --top 45

# Instructions per request in Envoy under callgrind, per variant and workload (about 6 minutes), into
# tests/bench/results/instructions.json. They do not move with the machine's load.
bench-instructions: bench-tools wasm venv bench-empty-filter ## instructions per request in Envoy (valgrind callgrind)
	command -v valgrind >/dev/null || { $(APT_INSTALL) valgrind; }
	$(VPY) tests/bench/instructions.py

# The .wasm size budget (about 3 minutes): bytes and V8 µs/request at opt-level 3, s and z, and what
# the shipped module's bytes are, into tests/bench/results/size.json.
bench-size: rust-targets venv bench-empty-filter $(RUN_DIR)/.stamp-binaryen $(TWIGGY) ## .wasm bytes and µs per opt-level, and what the bytes are
	$(VPY) tests/bench/size.py --twiggy $(TWIGGY)

# Idle resident memory (about 1 minute): Envoy started alone with the bench configuration, once per
# variant (baseline, the empty filter, scimguard), 3 times in rotated order; VmRSS, tcmalloc's
# counters and the anonymous mappings by kind (V8 code, Wasm memories, heap). BENCH_MEMORY_ARGS adds
# e.g. `--workers 4` or `--wasm z=path/to/other.wasm`.
bench-memory: wasm venv bench-empty-filter ## idle Envoy RSS: baseline, empty filter, scimguard (tests/bench/memory.py)
	$(VPY) tests/bench/memory.py --wasm scimguard=$(WASM) --out $(RUN_DIR)/bench-memory.json $(BENCH_MEMORY_ARGS)

##@ Deploy: the wasm image and the manifests (docs/deploying.md)
# `make oci` writes target/oci, the compat wasm image of the .wasm (a reproducible OCI layout), and
# prints its manifest digest (also in target/oci.digest): the sha256 an oci:// URL pins.
OCI_DIR        := target/oci
OCI_TAG        ?= $(CARGO_VERSION)
OCI_PUSH_FLAGS ?=

.PHONY: oci oci-push deploy-render

oci: wasm ## the compat wasm image (OCI layout) in target/oci; prints the manifest digest
	$(PYTHON) deploy/oci.py --wasm $(WASM) --out $(OCI_DIR) --tag $(OCI_TAG)

# e.g. make oci-push IMAGE=registry/repo:tag [OCI_PUSH_FLAGS=--dest-tls-verify=false]
oci-push: ## push target/oci with skopeo: make oci-push IMAGE=registry/repo:tag
	@test -n "$(IMAGE)" || { echo "oci-push: set IMAGE=registry/repo:tag"; exit 1; }
	@test -f $(OCI_DIR)/index.json || { echo "oci-push: run make oci first"; exit 1; }
	command -v skopeo >/dev/null || { $(APT_INSTALL) skopeo; }
	skopeo copy --preserve-digests $(OCI_PUSH_FLAGS) oci:$(OCI_DIR):$(OCI_TAG) docker://$(IMAGE)
	@echo "oci-push: $(IMAGE) is $$(cat $(OCI_DIR).digest) (the sha256 an oci:// URL pins)"

# Re-renders deploy/ from $(POLICY), deploy/values.json and envoy.yaml; set DIGEST=sha256:... and
# IMAGE=... to pin your own pushed image.
deploy-render: venv ## re-render deploy/ manifests (POLICY=..., DIGEST=sha256:..., IMAGE=registry/repo:tag)
	$(VPY) deploy/render.py --policy $(POLICY) $(if $(DIGEST),--digest $(DIGEST)) $(if $(IMAGE),--image $(IMAGE))

##@ Tools: installed on first use (Debian packages, .tools/, target/tools/)
# Limitador (Envoy's global rate-limit service, for the fleet test, docs/fleet.md) is built once per
# machine from the vendored source (Redis-only patch applied) into the git-ignored tools folder;
# where the vendored source is absent the fleet test says so and skips.
LIMITADOR_SRC ?= ../shared/vendor/limitador
LIMITADOR     := $(TOOLS)/bin/limitador-server
# Cargo's build directory for it lives per machine, like cargo's registry: a fresh clone on a machine
# that built it once relinks in seconds instead of rebuilding for minutes.
LIMITADOR_BUILD ?= $(HOME)/.cache/scimguard/limitador-build
DEPLOY_APT := docker-registry skopeo prometheus

.PHONY: bench-tools deploy-tools chromium differential-deps limitador

$(RUN_DIR)/.stamp-binaryen:
	command -v $(WASM_OPT) >/dev/null || { $(APT_INSTALL) binaryen; }
	mkdir -p $(RUN_DIR) && touch $@

# Not --locked: the CLI's lockfile pins a webpki-roots release the registry no longer serves, and
# without default features (no TLS: we never download) that crate is not built anyway.
$(WASM_BINDGEN_STAMP):
	cargo install --root $(TOOLS) --force wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) \
	  --no-default-features --bin wasm-bindgen
	test "$$($(WASM_BINDGEN) --version)" = "wasm-bindgen $(WASM_BINDGEN_VERSION)"
	touch $@

chromium: $(RUN_DIR)/.stamp-chromium ## Debian's chromium, for the page test
$(RUN_DIR)/.stamp-chromium:
	command -v chromium >/dev/null || { $(APT_INSTALL) chromium; }
	mkdir -p $(RUN_DIR) && touch $@

bench-tools: ## wrk and h2load (Debian: wrk, nghttp2-client) if missing
	@command -v wrk >/dev/null && command -v h2load >/dev/null || \
	  { $(APT_INSTALL) $(BENCH_APT); }

$(TWIGGY):
	cargo install --quiet --locked --root target/tools twiggy@0.8.0

deploy-tools: ## Debian docker-registry, skopeo and prometheus (promtool), if missing
	@command -v docker-registry >/dev/null && command -v skopeo >/dev/null && command -v promtool >/dev/null || \
	  { $(APT_INSTALL) $(DEPLOY_APT); }

differential-deps: venv $(DIFF_NODE_STAMP) ## the differential oracle's Node implementations (npm ci)
$(DIFF_NODE_STAMP): $(DIFF_NODE)/package.json $(DIFF_NODE)/package-lock.json
	node --version
	cd $(DIFF_NODE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

limitador: $(LIMITADOR) ## build Limitador (the rate-limit service) once into .tools/bin (needs protoc)
$(LIMITADOR):
	@if [ ! -d "$(LIMITADOR_SRC)" ]; then echo "limitador: $(LIMITADOR_SRC) absent; the fleet test will skip"; exit 0; fi; \
	command -v protoc >/dev/null || { echo "limitador: needs protoc (apt-get install -y protobuf-compiler)"; exit 1; }; \
	mkdir -p $(TOOLS)/bin; \
	CARGO_TARGET_DIR=$(LIMITADOR_BUILD) nice cargo build --release --manifest-path $(LIMITADOR_SRC)/Cargo.toml \
	  --locked -p limitador-server --no-default-features; \
	cp $(LIMITADOR_BUILD)/release/limitador-server $@
