import { LoaderError, parseCommand, type LoaderConfig } from '../src/index.js';

function run(argv: string[]): LoaderConfig {
  const command = parseCommand(argv);
  if (command.kind !== 'run') throw new Error('expected a run command');
  return command.config;
}

function problems(argv: string[]): string {
  try {
    parseCommand(argv);
  } catch (err) {
    if (err instanceof LoaderError && err.code === 'LOADER_USAGE') return err.message;
    throw err;
  }
  throw new Error('expected a usage error');
}

const REQUIRED = ['--source', 'gs://bucket/iris_svc.onnx', '--model-filepath', '/workdir/iris_svc.onnx'];

describe('parseCommand', () => {
  it('applies the documented defaults', () => {
    expect(run(REQUIRED)).toMatchObject({
      timeoutMs: 30_000,
      retries: 3,
      backoffMs: 1000,
      maxBackoffMs: 30_000,
      sha256: undefined,
      modelFilepath: '/workdir/iris_svc.onnx',
    });
  });

  it('accepts every flag, in either --flag value or --flag=value form', () => {
    const sha = 'AB'.repeat(32);
    const config = run([
      ...REQUIRED,
      `--sha256=${sha}`,
      '--timeout',
      '1m30s',
      '--retries=0',
      '--backoff',
      '250ms',
      '--max-backoff',
      '2s',
    ]);
    expect(config).toMatchObject({
      sha256: sha.toLowerCase(),
      timeoutMs: 90_000,
      retries: 0,
      backoffMs: 250,
      maxBackoffMs: 2000,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('returns help for --help and -h', () => {
    expect(parseCommand(['--help']).kind).toBe('help');
    expect(parseCommand(['-h']).kind).toBe('help');
  });

  it('lists every problem in one message', () => {
    const message = problems([
      '--source',
      'ftp://host/m.onnx',
      '--sha256',
      'abc',
      '--timeout',
      '10',
      '--retries',
      'many',
      '--bogus',
      'extra',
    ]);
    for (const part of [
      'unknown flag --bogus',
      'unexpected argument "extra"',
      'scheme "ftp:" is not supported',
      '--model-filepath is required',
      '--sha256 "abc" must be 64 hexadecimal characters',
      '--timeout "10" is not a duration',
      '--retries "many" must be a whole number',
    ]) {
      expect(message).toContain(part);
    }
    expect(message).not.toContain('\n');
  });

  it('requires --source', () => {
    expect(problems(['--model-filepath', '/m.onnx'])).toContain('--source is required');
  });

  it('rejects a flag given without its value', () => {
    expect(problems([...REQUIRED, '--timeout'])).toContain('--timeout needs a value');
  });

  it('rejects gs:// without an object and file:// naming a directory', () => {
    expect(problems(['--source', 'gs://bucket', '--model-filepath', '/m.onnx'])).toContain(
      'must be gs://bucket/object',
    );
    expect(problems(['--source', 'file:///models/', '--model-filepath', '/m.onnx'])).toContain('must name a file');
  });

  it('rejects a zero timeout and a max backoff below the base', () => {
    const message = problems([...REQUIRED, '--timeout', '0s', '--backoff', '2s', '--max-backoff', '1s']);
    expect(message).toContain('--timeout "0s" must be at least 1ms');
    expect(message).toContain('--max-backoff (1000ms) must not be below --backoff (2000ms)');
  });

  it('rejects a target path that names a directory', () => {
    expect(problems(['--source', 'gs://b/o', '--model-filepath', '/workdir/'])).toContain('must name a file');
  });
});
