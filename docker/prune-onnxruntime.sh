#!/bin/sh
# Keeps only the onnxruntime-node binaries of one platform: the package ships all of them (darwin, win32,
# linux x64/arm64; ~290 MB), an image needs one (linux/<cpu>; ~45 MB for x64, ~25 MB for arm64).
# Usage: prune-onnxruntime.sh NODE_MODULES CPU   (CPU: x64 or arm64). Missing package: nothing to do.
set -eu
bin="$1/onnxruntime-node/bin"
cpu="$2"
[ -d "$bin" ] || exit 0
for napi in "$bin"/napi-v*; do
  [ -d "$napi/linux/$cpu" ] || { echo "prune-onnxruntime: no linux/$cpu binary in $napi" >&2; exit 1; }
  for os in "$napi"/*; do
    [ "$(basename "$os")" = linux ] || rm -rf "$os"
  done
  for arch in "$napi"/linux/*; do
    [ "$(basename "$arch")" = "$cpu" ] || rm -rf "$arch"
  done
done
