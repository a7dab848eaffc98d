import type { HttpClient } from './http.js';

/** An opened source: the model's bytes as they arrive. */
export interface SourceBody {
  /** The bytes; iterating it throws when the transfer breaks or the attempt's signal aborts. */
  readonly body: AsyncIterable<Uint8Array>;
  /** Size the source announced (Content-Length, file size), to detect truncation. */
  readonly expectedBytes: number | undefined;
}

/** Somewhere a model can be read from; one implementation per URI scheme. */
export interface Source {
  /** What is read, for messages (`GET http://host/model.onnx`, `file:///models/x.onnx`). */
  readonly label: string;
  /** Loads what open() needs (the HTTP client), so that start-up cost never counts against an attempt's timeout. */
  prepare(): Promise<void>;
  /**
   * Starts one attempt at reading the model.
   * @throws LoaderError classified so the retry policy knows whether to try again
   */
  open(signal: AbortSignal): Promise<SourceBody>;
}

/** What source factories may need from their surroundings. */
export interface SourceContext {
  /** HTTP client used by http(s):// and gs://. */
  readonly http: HttpClient;
  /** Environment, for STORAGE_EMULATOR_HOST. */
  readonly env: Readonly<Record<string, string | undefined>>;
}
