/**
 * V8 heap flags for the sidecar process, set as `NODE_OPTIONS` by the image (docker/node.Dockerfile) and by
 * every harness that starts the sidecar (the lab, the end-to-end suite, the benches); the manifests state them
 * beside the memory limit they must fit (a 192 MB old-space cap is half of the 384Mi limit). V8 sizes its heap
 * for the machine, not for a sidecar: unbounded, RSS climbs to ~260 MB under load over a minute and more.
 *
 * The young generation is the trade between CPU and memory. Every scavenge finds a few hundred KB alive that
 * is not the requests in flight (node:http keeps each connection's last request until its next one) and
 * promotes it, so the number of scavenges sets both GC time and old-space churn. Pinned sidecar at 1,000 req/s
 * and at saturation, the same build, flag sets interleaved (BENCHMARKS.md, "V8 flags"): a 4 MB semi-space ran
 * ~93 scavenges per 10 s (1.8 ms each), 8 MB 49 (3.1 ms), 16 MB 29 (4.4 ms); CPU per request at saturation
 * 4 → 8 MB: 85 → 79 µs, 110 → 99 µs on a busier machine; RSS +4 to 9 MB (~130 MB). 16 MB saved a few µs
 * more for another 10-20 MB. With --single-threaded-gc RSS rose to 180-190 MB.
 */
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=8 --max-old-space-size=192';
