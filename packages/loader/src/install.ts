import { randomBytes, createHash } from 'node:crypto';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Dispatcher } from 'undici';
import type { LoaderConfig } from './config.js';
import { LoaderError } from './errors.js';
import { sha256OfFile } from './checksum.js';
import { verifyModel } from './model.js';
import { retry, type RetryNotice } from './retry.js';
import { HttpClient, resolveSource, type Source } from './sources/index.js';

/** Collaborators and hooks for {@link install}; all optional. */
export interface InstallOptions {
  /** Environment (STORAGE_EMULATOR_HOST); process.env by default. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Aborts the installation (SIGTERM); the target stays untouched. */
  readonly signal?: AbortSignal;
  /** Called before each wait between attempts. */
  readonly onRetry?: (notice: RetryNotice) => void;
  /** HTTP dispatcher; by default an Agent of our own (created on first use, closed when done). */
  readonly dispatcher?: Dispatcher;
  /** Source of backoff jitter in [0, 1). */
  readonly random?: () => number;
}

/** What {@link install} did. */
export interface InstallResult {
  /** `installed`: downloaded and renamed into place; `present`: the target already had the checksum. */
  readonly status: 'installed' | 'present';
  /** Absolute path of the model. */
  readonly path: string;
  /** Size of the model in bytes. */
  readonly bytes: number;
  /** sha256 of the model, lower-case hex. */
  readonly sha256: string;
  /** Download attempts made (0 when already present). */
  readonly attempts: number;
  /** What was read, for messages. */
  readonly source: string;
}

/**
 * Installs the model: streams it to a temporary file beside the target, retrying transient
 * failures, verifies the checksum and that onnxruntime loads it, then renames it into place
 * after fsync of file and directory. On any failure the target is untouched and the temporary
 * file removed.
 * @throws LoaderError with the code of the first failure that retries could not cure
 */
export async function install(config: LoaderConfig, options: InstallOptions = {}): Promise<InstallResult> {
  const target = resolve(config.modelFilepath);
  const http = new HttpClient(options.dispatcher);
  try {
    const source = resolveSource(config.source, { http, env: options.env ?? process.env });
    const existingBytes = await targetSize(target);
    if (config.sha256 !== undefined && existingBytes !== undefined) {
      const existing = await ioStep(`cannot read ${target}`, () => sha256OfFile(target));
      if (existing === config.sha256) {
        return {
          status: 'present',
          path: target,
          bytes: existingBytes,
          sha256: existing,
          attempts: 0,
          source: source.label,
        };
      }
    }
    return await installFresh(config, source, target, options);
  } finally {
    await http.close();
  }
}

/** Downloads into a temporary file beside the target, verifies it and renames it into place. */
async function installFresh(
  config: LoaderConfig,
  source: Source,
  target: string,
  options: InstallOptions,
): Promise<InstallResult> {
  const directory = dirname(target);
  const temp = join(directory, `.${basename(target)}.${randomBytes(4).toString('hex')}.partial`);
  let attempts = 0;
  const attempt = (signal: AbortSignal): Promise<Download> => {
    attempts++;
    return downloadOnce(source, temp, signal);
  };
  try {
    await ioStep(`cannot create directory ${directory}`, () => mkdir(directory, { recursive: true }));
    await source.prepare();
    const download = await retry(attempt, config, {
      label: source.label,
      ...(options.signal && { signal: options.signal }),
      ...(options.onRetry && { onRetry: options.onRetry }),
      ...(options.random && { random: options.random }),
    });
    if (config.sha256 !== undefined && download.sha256 !== config.sha256) {
      throw new LoaderError(
        'LOADER_CHECKSUM_MISMATCH',
        `${source.label}: sha256 ${download.sha256} of ${download.bytes} bytes does not match expected ${config.sha256}`,
      );
    }
    await verifyModel(temp, source.label);
    if (options.signal?.aborted === true) throw new LoaderError('LOADER_ABORTED', `${source.label}: interrupted`);
    await ioStep(`cannot rename into ${target}`, () => rename(temp, target));
    await syncDirectory(directory);
    return {
      status: 'installed',
      path: target,
      bytes: download.bytes,
      sha256: download.sha256,
      attempts,
      source: source.label,
    };
  } finally {
    // After a successful rename the temporary name no longer exists; force makes this a no-op then.
    await rm(temp, { force: true });
  }
}

interface Download {
  readonly bytes: number;
  readonly sha256: string;
}

/** One attempt: open the source, stream it into a fresh temporary file while hashing, fsync. */
async function downloadOnce(source: Source, temp: string, signal: AbortSignal): Promise<Download> {
  const { body, expectedBytes } = await source.open(signal);
  const iterator = body[Symbol.asyncIterator]();
  const hash = createHash('sha256');
  let bytes = 0;
  let file: FileHandle | undefined;
  try {
    const handle = await ioStep(`cannot create ${temp}`, () => open(temp, 'w'));
    file = handle;
    for (;;) {
      let step: IteratorResult<Uint8Array>;
      try {
        step = await iterator.next();
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new LoaderError(
          'LOADER_SOURCE_UNAVAILABLE',
          `${source.label}: transfer broke after ${bytes} bytes (${reason})`,
          { cause: err },
        );
      }
      if (step.done === true) break;
      const chunk = step.value;
      hash.update(chunk);
      bytes += chunk.byteLength;
      await ioStep(`cannot write ${temp}`, () => handle.write(chunk));
    }
    if (expectedBytes !== undefined && bytes !== expectedBytes) {
      throw new LoaderError(
        'LOADER_SOURCE_UNAVAILABLE',
        `${source.label}: truncated, got ${bytes} of ${expectedBytes} bytes`,
      );
    }
    await ioStep(`cannot sync ${temp}`, () => handle.sync());
  } finally {
    // Destroys an unfinished body, so its connection does not keep the Agent from closing.
    await iterator.return?.();
    await file?.close();
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Size of the existing target, undefined when absent; a directory in its place is an error. */
async function targetSize(target: string): Promise<number | undefined> {
  let stats;
  try {
    stats = await stat(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LoaderError(
      'LOADER_IO',
      `cannot inspect ${target} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      { cause: err },
    );
  }
  if (!stats.isFile()) throw new LoaderError('LOADER_IO', `${target} exists and is not a regular file`);
  return stats.size;
}

/** fsync the directory so the rename survives a crash; filesystems that cannot are tolerated. */
async function syncDirectory(directory: string): Promise<void> {
  const handle = await ioStep(`cannot open directory ${directory}`, () => open(directory, 'r'));
  try {
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'ENOTSUP') {
      throw new LoaderError('LOADER_IO', `cannot sync directory ${directory} (${code ?? String(err)})`, { cause: err });
    }
  } finally {
    await handle.close();
  }
}

/** Runs a filesystem step, turning its failure into LOADER_IO with the errno code. */
async function ioStep<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof LoaderError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new LoaderError('LOADER_IO', `${what} (${code ?? (err instanceof Error ? err.message : String(err))})`, {
      cause: err,
    });
  }
}
