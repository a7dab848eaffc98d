import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { LoaderError } from '../errors.js';
import type { Source, SourceBody } from './source.js';

/** Reads a model from a local file (`file:///models/iris.onnx`). */
export function fileSource(url: URL): Source {
  const path = fileURLToPath(url);
  const label = url.href;
  return {
    label,
    prepare: () => Promise.resolve(),
    async open(signal: AbortSignal): Promise<SourceBody> {
      let handle;
      try {
        handle = await open(path, 'r');
      } catch (err) {
        throw openError(label, err);
      }
      try {
        const stats = await handle.stat();
        if (!stats.isFile()) throw new LoaderError('LOADER_SOURCE_REJECTED', `${label}: not a regular file`);
        return { body: handle.createReadStream({ signal }), expectedBytes: stats.size };
      } catch (err) {
        await handle.close();
        throw err;
      }
    },
  };
}

function openError(label: string, err: unknown): LoaderError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new LoaderError('LOADER_SOURCE_NOT_FOUND', `${label}: no such file`, { cause: err });
  }
  const reason = code ?? (err instanceof Error ? err.message : String(err));
  return new LoaderError('LOADER_SOURCE_REJECTED', `${label}: cannot be read (${reason})`, { cause: err });
}
