// Tests are TypeScript, run as native ESM (node --experimental-vm-modules) and transformed by SWC.
/** @type {import('jest').Config} */
export default {
  testEnvironment: './test/jest-environment.cjs',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2023' },
        module: { type: 'es6' },
      },
    ],
  },
  roots: ['<rootDir>/packages', '<rootDir>/test'],
  testMatch: ['**/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 30000,
  // Integration tests start real servers and child processes; two cores, two workers.
  maxWorkers: 2,
};
