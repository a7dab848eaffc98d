import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { ApiConfig } from './config.js';

/** The process logger: JSON lines on stdout, or human-readable text with LOG_FORMAT=text. */
export function createLogger(config: Pick<ApiConfig, 'logLevel' | 'logFormat'>): Logger {
  const options = { level: config.logLevel, base: { service: 'iris-api', pid: process.pid } };
  if (config.logFormat === 'text') return pino(options, pretty({ colorize: false, sync: true }));
  return pino(options);
}
