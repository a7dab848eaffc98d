# syntax=docker/dockerfile:1
# client: the load generators (vegeta and k6, built with go install) plus the committed targets,
# body and k6 scripts, so `kubectl exec` runs them exactly as the local lab does.
# Build context: the repository root (make build_all passes the versions from the Makefile).
ARG GO_IMAGE=golang:1.26-bookworm
ARG NODE_IMAGE=node:24-slim

FROM ${GO_IMAGE} AS tools
ARG VEGETA_VERSION=v12.13.0
ARG K6_VERSION=v1.8.1
ENV CGO_ENABLED=0 GOBIN=/out GOFLAGS=-mod=mod
RUN go install github.com/tsenart/vegeta/v12@${VEGETA_VERSION} \
 && go install go.k6.io/k6@${K6_VERSION}

FROM ${NODE_IMAGE}
COPY --from=tools /out/vegeta /out/k6 /usr/local/bin/
WORKDIR /client
# Relative paths matter: vegeta/post-target names its body as @vegeta/data.json and k6 opens ../vegeta/data.json.
COPY vegeta/ vegeta/
COPY k6/*.ts k6/
# k6 writes its summary JSON here; the root filesystem is read-only in the cluster (an emptyDir is mounted).
ENV SUMMARY_JSON=/tmp/k6-summary.json
USER 10001:10001
# Stays up so `make attack` and `make k6` can exec into it.
CMD ["sleep", "infinity"]
