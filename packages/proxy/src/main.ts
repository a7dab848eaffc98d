#!/usr/bin/env node
// cb-sidecar: parse configuration, start, handle signals (SIGHUP reload, SIGTERM drain, SIGINT stop).
import './node-check.js'; // first: one clear line on a Node too old to load the rest
import { pino } from 'pino';
import { loadConfig, loadSettings, USAGE, type Config } from './config.js';
import { ConfigError } from './errors.js';
import { Sidecar } from './server.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}

let config: Config;
try {
  config = loadConfig(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`cb-sidecar: ${err.message}\n${USAGE}`);
  process.exit(2);
}
if (config.checkOnly) {
  process.stdout.write(
    `cb-sidecar: configuration OK${config.configPath ? ` (${config.configPath})` : ' (defaults)'}\n`,
  );
  process.exit(0);
}

const logger = pino({ name: 'cb-sidecar', level: config.logLevel });
let sidecar: Sidecar;
try {
  sidecar = await Sidecar.start(config, { logger });
} catch (err) {
  process.stderr.write(`cb-sidecar: cannot start: ${(err as Error).message}\n`);
  process.exit(1);
}

process.on('SIGHUP', () => {
  const path = config.configPath;
  if (path === undefined) {
    logger.warn('SIGHUP: no config file (--config/CB_CONFIG), nothing to reload');
    return;
  }
  try {
    sidecar.reload(loadSettings(path));
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    logger.error({ problems, path }, 'config reload rejected; keeping the previous config');
  }
});

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  const grace = setTimeout(() => {
    logger.error('drain grace period exceeded; exiting with requests still in flight');
    process.exit(1);
  }, sidecar.activeSettings.drain.graceMs);
  grace.unref();
  sidecar.drain().then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'drain failed');
      process.exit(1);
    },
  );
});

process.on('SIGINT', () => {
  void sidecar.close().then(() => process.exit(0));
});
