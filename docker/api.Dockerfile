# syntax=docker/dockerfile:1
# iris-api: the Express 5 + onnxruntime-node inference API (port 8000).
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
RUN npm install --no-save -w packages/api --include-workspace-root
RUN npx tsc -b packages/api

FROM ${NODE_IMAGE} AS deps
ENV ONNXRUNTIME_NODE_INSTALL=skip npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
WORKDIR /src
COPY package.json package-lock.json ./
COPY packages/ packages/
RUN npm install --no-save --omit=dev -w packages/api && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production ONNXRUNTIME_NODE_INSTALL=skip
WORKDIR /app
COPY --from=deps /src/node_modules node_modules
COPY --from=build /src/packages/api/package.json packages/api/package.json
COPY --from=build /src/packages/api/dist packages/api/dist
# The model baked into the image: the API falls back to it when MODEL_FILEPATH is missing.
COPY --from=build /src/packages/api/models packages/api/models
WORKDIR /app/packages/api
# The numeric uid lets kubelet verify runAsNonRoot without a passwd lookup.
USER 10001:10001
EXPOSE 8000
CMD ["node", "dist/main.js"]
