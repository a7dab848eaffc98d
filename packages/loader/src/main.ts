#!/usr/bin/env node
// The model-loader CLI: one line on stdout per event, exactly one line on stderr on failure.
import { parseCommand, USAGE } from './config.js';
import { formatMs } from './duration.js';
import { toLoaderError } from './errors.js';
import { install } from './install.js';

const PREFIX = 'model-loader:';

async function main(argv: readonly string[]): Promise<number> {
  let command;
  try {
    command = parseCommand(argv);
  } catch (err) {
    return fail(err);
  }
  if (command.kind === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const started = performance.now();
  try {
    const result = await install(command.config, {
      signal: controller.signal,
      onRetry: ({ attempt, attempts, error, delayMs }) =>
        say(
          `attempt ${attempt}/${attempts} failed: ${error.code}: ${oneLine(error.message)}; retrying in ${formatMs(delayMs)}`,
        ),
    });
    const took = formatMs(performance.now() - started);
    if (result.status === 'present') {
      say(`${result.path} already has sha256 ${result.sha256} (${result.bytes} bytes); nothing downloaded`);
    } else {
      const tries = result.attempts === 1 ? '1 attempt' : `${result.attempts} attempts`;
      say(
        `installed ${result.path} (${result.bytes} bytes, sha256 ${result.sha256}) from ${result.source} in ${took}, ${tries}`,
      );
    }
    return 0;
  } catch (err) {
    return fail(err);
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

function say(line: string): void {
  process.stdout.write(`${PREFIX} ${line}\n`);
}

function fail(err: unknown): number {
  const error = toLoaderError(err);
  process.stderr.write(`${PREFIX} ${error.code}: ${oneLine(error.message)}\n`);
  return error.exitCode;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}

process.exitCode = await main(process.argv.slice(2));
