# syntax=docker/dockerfile:1
# The three Node images from one file, one target each (make build_all):
#   --target api     iris-api: Express 5 + onnxruntime-node inference API (port 8000), the model baked in
#   --target loader  model-loader: fetches the model into the pod's emptyDir (init container)
#   --target proxy   cb-sidecar: the circuit-breaker sidecar (traffic 8080, admin 9901)
# Build context: the repository root. Built for the nodes' platform (docker build --platform, make PLATFORM=...)
# from any machine: every RUN step runs on the build machine's own platform ($BUILDPLATFORM): tsc's output runs
# anywhere, and npm installs the target's binaries with --os/--cpu without executing them. The final stages only
# copy, so no step ever runs under emulation.
ARG NODE_VERSION=24.21.0
ARG NODE_IMAGE=node:${NODE_VERSION}-bookworm-slim

# The workspace's manifests and the lockfile, nothing else: the install layers below stay cached until one of
# them changes. Every workspace is listed (npm ci needs them all; a test checks against package.json).
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS manifests
# onnxruntime-node's install script would fetch CUDA libraries; the CPU binaries ship in the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
WORKDIR /src
COPY package.json package-lock.json ./
COPY packages/common/package.json packages/common/
COPY packages/api/package.json packages/api/
COPY packages/loader/package.json packages/loader/
COPY packages/proxy/package.json packages/proxy/
COPY packages/policy/package.json packages/policy/
COPY packages/lab/package.json packages/lab/
COPY packages/dashboards/package.json packages/dashboards/
COPY packages/deploy/package.json packages/deploy/
COPY packages/testkit/package.json packages/testkit/
COPY docker/install-deps.sh docker/prune-onnxruntime.sh /usr/local/bin/

# Compile with the dev dependencies, exactly as locked.
FROM manifests AS build
RUN npm ci --ignore-scripts
COPY tsconfig.base.json ./
COPY packages/ packages/
RUN npx tsc -b packages/api packages/loader packages/proxy

# One package's production dependencies each, for the target platform (docker/install-deps.sh).
FROM manifests AS deps-api
ARG TARGETARCH
RUN install-deps.sh api "$TARGETARCH"

FROM manifests AS deps-loader
ARG TARGETARCH
RUN install-deps.sh loader "$TARGETARCH"

FROM manifests AS deps-proxy
ARG TARGETARCH
RUN install-deps.sh proxy "$TARGETARCH"

# What every image runs on: node alone, as a non-root user (the numeric uid lets kubelet verify runAsNonRoot
# without a passwd lookup), with node (not npm, which swallows signals) as PID 1.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
USER 10001:10001

FROM runtime AS api
WORKDIR /app
COPY --from=deps-api /src/node_modules node_modules
# @infer-cb/common (Istio durations, the raw-socket answer): a workspace link in node_modules, so its files too.
COPY --from=build /src/packages/common/package.json packages/common/package.json
COPY --from=build /src/packages/common/dist packages/common/dist
COPY --from=build /src/packages/api/package.json packages/api/package.json
COPY --from=build /src/packages/api/dist packages/api/dist
# The model baked into the image: the API serves it when MODEL_FILEPATH is missing (no model fetched).
COPY --from=build /src/packages/api/models packages/api/models
# The Open Inference Protocol's proto: the v2 gRPC service (GRPC_PORT) loads it from the repository's place.
COPY proto/grpc_predict_v2.proto /app/proto/grpc_predict_v2.proto
WORKDIR /app/packages/api
EXPOSE 8000
CMD ["node", "dist/main.js"]

# The loader keeps what it uses: node, undici (downloads), onnxruntime-node for linux/<cpu> (the model check
# that catches an HTML error page saved as a model) and sh (the init container's fallback script). The base's
# npm (~15 MB of its ~220 MB) stays: removing it takes a RUN in the target's platform, i.e. emulation.
FROM runtime AS loader
WORKDIR /app
COPY --from=deps-loader /src/node_modules node_modules
# @infer-cb/common (Istio durations, the raw-socket answer): a workspace link in node_modules, so its files too.
COPY --from=build /src/packages/common/package.json packages/common/package.json
COPY --from=build /src/packages/common/dist packages/common/dist
COPY --from=build /src/packages/loader/package.json packages/loader/package.json
COPY --from=build /src/packages/loader/dist packages/loader/dist
WORKDIR /app/packages/loader
CMD ["node", "dist/main.js"]

FROM runtime AS proxy
# Bounded V8 heap: RSS ~130 MB under load instead of ~260 MB (packages/proxy/src/heap-flags.ts, kept equal by a
# test); the manifests give the container twice that (384Mi).
ENV NODE_OPTIONS="--max-semi-space-size=4 --max-old-space-size=192"
WORKDIR /app
COPY --from=deps-proxy /src/node_modules node_modules
# @infer-cb/common (Istio durations, the raw-socket answer): a workspace link in node_modules, so its files too.
COPY --from=build /src/packages/common/package.json packages/common/package.json
COPY --from=build /src/packages/common/dist packages/common/dist
COPY --from=build /src/packages/proxy/package.json packages/proxy/package.json
COPY --from=build /src/packages/proxy/dist packages/proxy/dist
WORKDIR /app/packages/proxy
EXPOSE 8080 9901
CMD ["node", "dist/main.js"]
