#!/bin/sh
# Production dependencies of one workspace package for the image's platform (Docker's TARGETARCH), installed
# exactly as locked and without running anything for that platform: npm picks the target's optional binaries
# with --os/--cpu (scripts off: none of our dependencies needs one), and onnxruntime-node keeps only linux/<cpu>.
# Usage: install-deps.sh PACKAGE TARGETARCH   (run in the workspace root; PACKAGE: api, loader, proxy)
set -eu
pkg="$1"
case "$2" in
  amd64) cpu=x64 ;;
  arm64) cpu=arm64 ;;
  *) echo "install-deps: unsupported TARGETARCH $2 (amd64 or arm64)" >&2; exit 1 ;;
esac
npm ci --omit=dev --ignore-scripts --os=linux --cpu="$cpu" -w "packages/$pkg"
"$(dirname "$0")/prune-onnxruntime.sh" node_modules "$cpu"
npm cache clean --force 2>/dev/null || true
