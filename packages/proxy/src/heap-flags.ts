/**
 * V8 heap flags for the sidecar process, set as `NODE_OPTIONS` by the image (docker/node.Dockerfile) and by
 * every harness that starts the sidecar (the lab, the end-to-end suite, the benches); the manifests state them
 * beside the memory limit they must fit (a 192 MB old-space cap is half of the 384Mi limit). V8 sizes its heap
 * for the machine, not for a sidecar: unbounded, RSS climbs to ~260 MB under load over a minute and more.
 *
 * The young generation is the trade between CPU and memory. On node:http + undici every scavenge promoted a
 * few hundred KB, and an 8 MB semi-space paid for itself (79 against 85 µs/request at saturation). The HTTP/1.1
 * engine (http1/) allocates far less per request and keeps nothing past its answer: pinned sidecar, the same
 * build, flag sets interleaved, 2 rounds (2026-12-02, BENCHMARKS.md "V8 flags"): 2 MB 68 µs/request at
 * saturation, 260 at 1,000 req/s, 93 MB RSS at 5,000 req/s; 4 MB 46 / 234 / 93.5; 8 MB 61 / 231 / 101.5;
 * 16 MB 63 / 229 / 114. 4 MB costs no CPU against 8 and keeps RSS under 100 MB.
 */
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=4 --max-old-space-size=192';
