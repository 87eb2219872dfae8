#!/usr/bin/env node
// Runs the benchmarks under dist/bench (each prints one JSON report on stdout).
//   node scripts/run-bench.mjs                    all of them
//   node scripts/run-bench.mjs codec push         the ones named
//   node scripts/run-bench.mjs --quick            all of them, small sizes (a flag goes to each one)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = 'dist/bench';
const args = process.argv.slice(2);
const want = args.filter((a) => !a.startsWith('--'));
const flags = args.filter((a) => a.startsWith('--'));
if (!existsSync(root)) {
  console.error(`no ${root}: run "npm run build" first`);
  process.exit(1);
}
const benches = readdirSync(root)
  .filter((d) => existsSync(join(root, d, 'main.js')))
  .filter((d) => want.length === 0 || want.includes(d));
const unknown = want.filter((w) => !benches.includes(w));
for (const w of unknown) console.error(`no benchmark named ${w}`);
let failed = unknown.length;
for (const b of benches) {
  const r = spawnSync(process.execPath, [join(root, b, 'main.js'), ...flags], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
