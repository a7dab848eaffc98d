// The public surface of @infer-cb/common: dependency-free pieces more than one package needs.
export { durationToMs, DURATION_PATTERN } from './duration.js';
export { writeRawAnswer, type RawSocket } from './raw-answer.js';
