// Prints jest's --json results as the plain closing line CI reads: "N passed, N failed".
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? '.ci-results/jest.json';
let results;
try {
  results = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`no jest results at ${file}: ${err.message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
// A suite that fails to load has no test results; count it as one failure so it cannot hide.
const brokenSuites = results.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
for (const s of results.testResults.filter((s) => s.status === 'failed')) {
  console.log(`FAILED ${s.name}`);
}
console.log(`${results.numPassedTests} passed, ${results.numFailedTests + brokenSuites} failed`);
