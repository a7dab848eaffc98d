// `@infer-cb/proxy/duration`: the Istio duration parser (one copy, in @infer-cb/common), for consumers that
// want it without loading the sidecar.
export { durationToMs, DURATION_PATTERN } from '@infer-cb/common';
