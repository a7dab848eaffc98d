# syntax=docker/dockerfile:1
# iris-client: one caller of the callers Job. vegeta and k6 (go install at the Makefile's versions, cross-compiled
# on the build machine for the target platform) plus the committed targets, body and k6 scripts, so a caller
# runs them exactly as the local lab does. k6 runs the TypeScript scripts itself; nothing here needs Node, but
# the base is the other images' (pinned the same way), so a node holding all four images stores it once.
# Build context: the repository root (make build_all passes the versions from the Makefile).
ARG GO_VERSION=1.26.8
ARG NODE_VERSION=24.21.0
ARG NODE_IMAGE=node:${NODE_VERSION}-bookworm-slim

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS tools
ARG TARGETOS
ARG TARGETARCH
ARG VEGETA_VERSION=v12.13.0
ARG K6_VERSION=v1.8.1
# GOBIN is left unset: go install refuses it when cross-compiling, and puts the binaries in bin/<os>_<arch>/.
ENV CGO_ENABLED=0 GOFLAGS=-mod=mod GOOS=${TARGETOS} GOARCH=${TARGETARCH}
RUN go install github.com/tsenart/vegeta/v12@${VEGETA_VERSION} \
 && go install go.k6.io/k6@${K6_VERSION} \
 && mkdir /out && find "$(go env GOPATH)/bin" -type f \( -name vegeta -o -name k6 \) -exec cp {} /out/ \;

FROM ${NODE_IMAGE}
COPY --from=tools /out/vegeta /out/k6 /usr/local/bin/
WORKDIR /client
# Relative paths matter: vegeta/post-target names its body as @vegeta/data.json and k6 opens ../vegeta/data.json.
COPY vegeta/ vegeta/
COPY k6/*.ts k6/
# k6/grpc.ts loads the Open Inference Protocol's proto from ../proto, as it does in the repository.
COPY proto/grpc_predict_v2.proto proto/
# k6 writes its summary JSON here; the root filesystem is read-only in the cluster (an emptyDir is mounted).
ENV SUMMARY_JSON=/tmp/k6-summary.json K6_NO_USAGE_REPORT=true
USER 10001:10001
# Idles until cb-deploy attack execs a load run in it. PID 1 has no default signal handlers, so `sleep` alone
# would ignore SIGTERM and every pod deletion would wait out the grace period; the trap ends it at once.
CMD ["sh", "-c", "trap 'exit 0' TERM INT; sleep infinity & wait"]
