#!/usr/bin/env node
// cb-sidecar: parse configuration, start, handle signals (SIGHUP reload, SIGTERM drain, SIGINT stop).
import './node-check.js'; // first: one clear line on a Node too old to load the rest
import { pino } from 'pino';
import { loadConfig, loadSettings, USAGE, type Config, type Settings } from './config.js';
import { ConfigError } from './errors.js';
import { Sidecar } from './server.js';
import { VERSION } from './version.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (process.argv.includes('--version')) {
  process.stdout.write(`cb-sidecar ${VERSION}\n`);
  process.exit(0);
}

let config: Config;
try {
  config = loadConfig(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`cb-sidecar: ${err.message}\n(cb-sidecar --help lists the flags)\n`);
  process.exit(2);
}
if (config.checkOnly) {
  process.stdout.write(
    `cb-sidecar: configuration OK${config.configPath ? ` (${config.configPath})` : ' (defaults)'}\n`,
  );
  process.exit(0);
}

const logger = pino({ name: 'cb-sidecar', level: config.logLevel });
// Signals are handled from before the listeners open: a supervisor may signal as soon as it sees the start
// line, and an unhandled SIGHUP would end the process.
let sidecar: Sidecar | undefined;
/** Settings reloaded while the sidecar was still starting: applied once it has. */
let pending: Settings | undefined;
let stopping = false;

process.on('SIGHUP', () => {
  const path = config.configPath;
  if (path === undefined) {
    logger.warn('SIGHUP: no config file (--config/CB_CONFIG), nothing to reload');
    return;
  }
  let next: Settings;
  try {
    next = loadSettings(path);
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    logger.error({ problems, path }, 'config reload rejected; keeping the previous config');
    return;
  }
  if (sidecar === undefined) pending = next;
  else sidecar.reload(next);
});

process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  if (sidecar === undefined) process.exit(0); // nothing accepted yet: nothing to drain
  const running = sidecar;
  const grace = setTimeout(() => {
    logger.error('drain grace period exceeded; exiting with requests still in flight');
    process.exit(1);
  }, running.activeSettings.drain.graceMs);
  grace.unref();
  running.drain().then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'drain failed');
      process.exit(1);
    },
  );
});

process.on('SIGINT', () => {
  if (sidecar === undefined) process.exit(0);
  void sidecar.close().then(() => process.exit(0));
});

try {
  sidecar = await Sidecar.start(config, { logger });
} catch (err) {
  process.stderr.write(`cb-sidecar: cannot start: ${(err as Error).message}\n`);
  process.exit(1);
}
if (pending !== undefined) sidecar.reload(pending);
