export { loadModel, IRIS_SAMPLE, type Classifier, type ModelInfo, type LoadModelOptions } from './model.js';
export { loadConfig, ConfigError, DEFAULTS, ENV, type ApiConfig } from './config.js';
export { ERRORS, ApiError, type ErrorCode, type ErrorBody } from './errors.js';
