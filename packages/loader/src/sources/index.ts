import { LoaderError } from '../errors.js';
import { fileSource } from './file.js';
import { gcsSource } from './gcs.js';
import { httpSource } from './http.js';
import type { Source, SourceContext } from './source.js';

/**
 * Picks the source for a URI by its scheme.
 * @throws LoaderError LOADER_USAGE for a scheme we do not read
 */
export function resolveSource(url: URL, context: SourceContext): Source {
  switch (url.protocol) {
    case 'file:':
      return fileSource(url);
    case 'http:':
    case 'https:':
      return httpSource(url, context.http);
    case 'gs:':
      return gcsSource(url, context.http, context.env);
    default:
      throw new LoaderError(
        'LOADER_USAGE',
        `source scheme "${url.protocol}" is not supported (expected file://, http(s):// or gs://)`,
      );
  }
}

export type { Source, SourceBody, SourceContext } from './source.js';
export { HttpClient, MAX_REDIRECTIONS } from './http.js';
