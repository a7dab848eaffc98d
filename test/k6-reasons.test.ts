// k6/lib.ts keeps its own copy of the sidecar's x-cb-reason values (the client image holds only k6/): the
// copy must be the exported list, in its order, plus the two causes that are not the sidecar's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REASONS } from '@infer-cb/proxy/outcomes';

it("k6/lib.ts lists exactly the sidecar's x-cb-reason values, then envoy-overloaded and other", () => {
  const text = readFileSync(join(import.meta.dirname, '..', 'k6', 'lib.ts'), 'utf8');
  const list = /export const rejectionReasons = \[([^\]]*)\] as const;/.exec(text)?.[1];
  expect(list).toBeDefined();
  const copied = [...(list as string).matchAll(/'([^']+)'/g)].map((m) => m[1]);
  expect(copied).toEqual([...REASONS, 'envoy-overloaded', 'other']);
});
