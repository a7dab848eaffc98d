// @infer-cb/deploy: what the Makefile's Kubernetes targets run (bin cb-deploy).
export { ARMS, ARM_NAMES, MIN_ISTIO, MIN_KUBERNETES, atLeast, isArm, parseVersion, type Arm } from './arms.js';
export { attack, attackProblems, callerCommand, callersJob, durationMs, type AttackOptions } from './callers.js';
export { DeployError, ERRORS } from './errors.js';
export { formatK6Report, mergeK6Csv, percentile, type K6Report } from './merge.js';
export { IMAGE_NAMES, overlayKustomization, overlayProblems, parseLabels, writeOverlay } from './overlay.js';
export { imageMissing, imageSource, istioVersion, kubernetesVersion, preflight } from './preflight.js';
export { firstLine, run, type Run, type RunResult } from './run.js';
