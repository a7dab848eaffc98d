/** Public surface of @infer-cb/loader: fetch, verify and atomically install an ONNX model. */
export { install, type InstallOptions, type InstallResult } from './install.js';
export { parseCommand, DEFAULTS, SCHEMES, USAGE, type Command, type LoaderConfig } from './config.js';
export { ERRORS, LoaderError, toLoaderError, type ErrorSpec, type LoaderErrorCode } from './errors.js';
export { retry, backoffDelayMs, type RetryPolicy, type RetryOptions, type RetryNotice } from './retry.js';
export { resolveSource, type Source, type SourceBody, type SourceContext } from './sources/index.js';
export { HttpClient, MAX_REDIRECTIONS, parseRetryAfterMs, statusError } from './sources/http.js';
export { gcsHost, GCS_HOST, STORAGE_EMULATOR_HOST } from './sources/gcs.js';
export { formatMs } from './duration.js';
export { sha256OfFile } from './checksum.js';
export { verifyModel } from './model.js';
