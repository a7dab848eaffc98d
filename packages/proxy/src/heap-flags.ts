/**
 * V8 heap flags for the sidecar process, set as `NODE_OPTIONS` by the image (docker/node.Dockerfile) and by
 * every harness that starts the sidecar (the lab, the end-to-end suite, the benches); the manifests state them
 * beside the memory limit they must fit (a 192 MB old-space cap is half of the 384Mi limit). V8 sizes its heap
 * for the machine, not for a sidecar: unbounded, RSS climbs to ~260 MB under load over a minute and more.
 *
 * The young generation is the trade between CPU and memory. On node:http + undici every scavenge promoted a
 * few hundred KB, and an 8 MB semi-space paid for itself (79 against 85 µs/request at saturation). The HTTP/1.1
 * engine (http1/) allocates far less per request and keeps nothing past its answer, and the choice no longer
 * shows in CPU: pinned sidecar, the same build, flag sets interleaved, 2 rounds each, two runs on 2026-12-02
 * (BENCHMARKS.md "V8 flags"): at saturation 4 MB 46 and 61 µs/request, 8 MB 61 and 50, 6 MB 56, 16 MB 63;
 * at 1,000 req/s 234 / 274 against 231 / 215. RSS at 5,000 req/s: 4 MB 93.5-96.6 MB, 8 MB 101.5-104.0,
 * 16 MB 114. 4 MB keeps the sidecar under 100 MB. (gRPC through undici: ~600-630 µs per call with 4, 6 or 8 MB.)
 */
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=4 --max-old-space-size=192';
