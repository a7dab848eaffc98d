# syntax=docker/dockerfile:1
# cb-sidecar: the circuit-breaker and admission-control sidecar (traffic 8080, admin 9901).
# Build context: the repository root (make build_all). Multi-stage: compile with dev dependencies,
# install production dependencies alone, run as a non-root user with node (not npm, which swallows signals).
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
# onnxruntime-node's install script would fetch CUDA libraries; the CPU binaries ship in the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages/ packages/
# npm ci rejects this lockfile (it lacks other platforms' optional binaries); install --no-save honours it.
RUN npm install --no-save -w packages/proxy --include-workspace-root
RUN npx tsc -b packages/proxy

FROM ${NODE_IMAGE} AS deps
ENV ONNXRUNTIME_NODE_INSTALL=skip npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
WORKDIR /src
COPY package.json package-lock.json ./
COPY packages/ packages/
RUN npm install --no-save --omit=dev -w packages/proxy && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production ONNXRUNTIME_NODE_INSTALL=skip
# Bounded V8 heap: RSS ~130 MB under load instead of ~260 MB (packages/proxy/src/runtime.ts, kept equal by a test).
ENV NODE_OPTIONS="--max-semi-space-size=4 --max-old-space-size=192"
WORKDIR /app
COPY --from=deps /src/node_modules node_modules
COPY --from=build /src/packages/proxy/package.json packages/proxy/package.json
COPY --from=build /src/packages/proxy/dist packages/proxy/dist
WORKDIR /app/packages/proxy
# The numeric uid lets kubelet verify runAsNonRoot without a passwd lookup.
USER 10001:10001
EXPOSE 8080 9901
CMD ["node", "dist/main.js"]
