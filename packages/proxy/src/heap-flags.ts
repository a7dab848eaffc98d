/**
 * V8 heap flags for the sidecar process, set as `NODE_OPTIONS` by the image (docker/proxy.Dockerfile) and by
 * every harness that starts the sidecar (the lab, the end-to-end suite). V8 sizes its heap for the machine,
 * not for a sidecar: unbounded, RSS climbs to ~260 MB under load over a minute and more, which a 192Mi pod
 * limit would OOM-kill. With a 4 MB semi-space and a 192 MB old-space cap it plateaus near 125-130 MB within
 * seconds, at the same CPU per request (measured at 1,000 req/s; BENCHMARKS.md).
 */
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=4 --max-old-space-size=192';
