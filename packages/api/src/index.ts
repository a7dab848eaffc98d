export { createApp, ROUTES, type AppOptions } from './app.js';
export { loadModel, IRIS_SAMPLE, type Classifier, type ModelInfo, type LoadModelOptions } from './model.js';
export { loadConfig, ConfigError, DEFAULTS, ENV, type ApiConfig } from './config.js';
export { ERRORS, ApiError, type ErrorCode, type ErrorBody } from './errors.js';
export { startServer, runApi, type ApiServer } from './server.js';
export { createMetrics, type ApiMetrics } from './metrics.js';
