import type { Supervisor } from '../processes.js';
import type { LabRequest, Protocol } from '../model-server.js';
import type { PriorityClass } from '@infer-cb/proxy/outcomes';
import type { ResultRecorder } from '../results.js';

/** One attack: an open-model constant arrival rate of inference requests against the lab's Service. */
export interface AttackSpec {
  /** Base URL of the Service, e.g. `http://127.0.0.1:40123` (127.0.0.1 only). */
  baseUrl: string;
  /** Offered rate in requests per second. */
  rate: number;
  durationSeconds: number;
  /** Upper bound on one request's time, from its scheduled send to its answer. */
  timeoutMs: number;
  /** Upper bound on requests in flight at once (builtin driver; tools have their own). */
  maxInflight: number;
  /** Repository root: where vegeta/ and k6/ are found. */
  repoRoot: string;
  /** Where tools may write their raw output. */
  workDir: string;
  /** What to POST over REST (default: the seed's body to /predict). */
  request?: LabRequest;
  /** REST (default), or gRPC: ModelInfer to `baseUrl`'s host and port (k6 only). */
  protocol?: Protocol;
  /** Every request lands here; the progress line reads it while the attack runs. */
  recorder: ResultRecorder;
  /** Tools run as its children, so Ctrl-C and failures stop them too. */
  supervisor: Supervisor;
  /** Aborting ends the attack early. */
  signal?: AbortSignal;
  /**
   * The priority class of each request in turn, repeated (`--mix`): sent in `x-request-priority`, and the
   * answers counted by class. Undefined: no class header.
   */
  mix?: readonly PriorityClass[];
  /** Called once when the attack's clock starts (the first request is due): the lab's series start here. */
  onStart?: () => void;
}

/** A load generator: the builtin one, or a real tool whose output is parsed into the same model. */
export interface Driver {
  readonly name: 'builtin' | 'vegeta' | 'k6';
  /** Runs the attack to the end; fills `spec.recorder`; resolves to the raw output files it wrote. */
  attack(spec: AttackSpec): Promise<string[]>;
}

/** The names of the drivers, as `--driver` accepts them. */
export const DRIVER_NAMES = ['builtin', 'vegeta', 'k6'] as const;
