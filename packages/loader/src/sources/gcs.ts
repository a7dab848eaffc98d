import { httpSource, type HttpClient } from './http.js';
import type { Source } from './source.js';

/** Variable that points gs:// at an emulator (fake-gcs-server, the Cloud Storage testbench). */
export const STORAGE_EMULATOR_HOST = 'STORAGE_EMULATOR_HOST';

/** Google Cloud Storage's public endpoint. */
export const GCS_HOST = 'https://storage.googleapis.com';

/**
 * Reads a public object anonymously (`gs://bucket/path/to/model.onnx`) with the JSON API media
 * download, from STORAGE_EMULATOR_HOST when set (with or without a scheme, as the Google clients accept).
 */
export function gcsSource(url: URL, http: HttpClient, env: Readonly<Record<string, string | undefined>>): Source {
  const bucket = url.hostname;
  const object = objectName(url);
  const download = new URL(
    `${gcsHost(env)}/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(object)}?alt=media`,
  );
  return httpSource(download, http, `gs://${bucket}/${object} (GET ${download.href})`);
}

/** The JSON API host: STORAGE_EMULATOR_HOST when set, otherwise storage.googleapis.com. */
export function gcsHost(env: Readonly<Record<string, string | undefined>>): string {
  const emulator = env[STORAGE_EMULATOR_HOST]?.trim();
  if (emulator === undefined || emulator === '') return GCS_HOST;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(emulator) ? emulator : `http://${emulator}`;
  return withScheme.replace(/\/+$/, '');
}

function objectName(url: URL): string {
  // Everything after "gs://bucket/", query and fragment included: object names may contain '?' and '#'.
  const raw = url.href.slice(`gs://${url.host}/`.length);
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
