// The public surface of @infer-cb/common: small pieces more than one package needs.
export { durationToMs, DURATION_PATTERN } from './duration.js';
export { writeRawAnswer, type RawSocket } from './raw-answer.js';
export { closest, formatSchemaProblems, type SchemaError } from './schema-problems.js';
