// Prints jest's --json results (one or more files) as the plain closing line CI reads: "N passed, N failed".
import { readFileSync } from 'node:fs';

const files = process.argv.length > 2 ? process.argv.slice(2) : ['.ci-results/jest.json'];
let passed = 0;
let failed = 0;
for (const file of files) {
  let results;
  try {
    results = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    console.error(`no jest results at ${file}: ${err.message}`);
    failed += 1;
    continue;
  }
  // A suite that fails to load has no test results; count it as one failure so it cannot hide.
  for (const s of results.testResults.filter((s) => s.status === 'failed')) {
    console.log(`FAILED ${s.name}`);
    if (s.assertionResults.length === 0) failed += 1;
  }
  passed += results.numPassedTests;
  failed += results.numFailedTests;
}
console.log(`${passed} passed, ${failed} failed`);
