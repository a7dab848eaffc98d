#!/usr/bin/env node
import { ConfigError, loadConfig, type ApiConfig } from './config.js';
import { ApiError } from './errors.js';
import { runApi } from './server.js';
import { parseCommandLine, USAGE } from './usage.js';

const command = parseCommandLine(process.argv.slice(2));
if (command.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (command.error !== undefined) {
  process.stderr.write(`${command.error}\n`);
  process.exit(2);
}

let config: ApiConfig;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(
    `iris-api: ${err.code}: invalid configuration:\n${err.problems.map((p) => `  - ${p}\n`).join('')}`,
  );
  process.exit(2);
}

try {
  await runApi(config);
} catch (err) {
  const line = err instanceof ApiError ? `${err.code}: ${err.message}` : `INTERNAL: ${String(err)}`;
  process.stderr.write(`iris-api: ${line}\n`);
  process.exit(1);
}
