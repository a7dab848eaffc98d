#!/usr/bin/env node
// cb-policy: a mesh policy in, Envoy bootstraps or the cb-sidecar config out (docs/istio-arm.md).
import '@infer-cb/proxy/node-check'; // first: one clear line on a Node too old to load the rest
import { runCli } from './cli.js';

const result = runCli(process.argv.slice(2));
process.stdout.write(result.stdout);
process.stderr.write(result.stderr);
process.exitCode = result.code;
