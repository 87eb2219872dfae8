#!/usr/bin/env node
// Runs the benchmarks under dist/bench (each prints one JSON report on stdout).
//   node scripts/run-bench.mjs            all of them
//   node scripts/run-bench.mjs codec      the ones whose name matches
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = 'dist/bench';
const want = process.argv.slice(2);
if (!existsSync(root)) {
  console.error(`no ${root}: run "npm run build" first`);
  process.exit(1);
}
const benches = readdirSync(root)
  .filter((d) => existsSync(join(root, d, 'main.js')))
  .filter((d) => want.length === 0 || want.includes(d));
let failed = 0;
for (const b of benches) {
  const r = spawnSync(process.execPath, [join(root, b, 'main.js')], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
