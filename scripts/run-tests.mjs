#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's built-in runner, so the
// runner's summary is the last thing printed. Optional arguments pick suites by folder name:
//   node scripts/run-tests.mjs unit compat
// With no argument every suite runs, the browser one (test/browser, Chromium at /usr/bin/chromium)
// included: a missing suite folder or browser is a failure, never a silent skip.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = 'dist/test';
const suites = process.argv.slice(2);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

if (!existsSync(root)) {
  console.error(`no ${root}: run "npm run build" first`);
  process.exit(1);
}
const SUITES = ['unit', 'integration', 'cluster', 'compat', 'fuzz', 'browser'];
if (suites.length === 0) {
  const missing = SUITES.filter((s) => !existsSync(join(root, s)));
  if (missing.length > 0) {
    console.error(`no compiled ${missing.join(', ')} suite under ${root}: run "npm run build" first`);
    process.exit(1);
  }
}
const files = walk(root).filter((f) => suites.length === 0 || suites.some((s) => f.split('/').includes(s)));
if (files.length === 0) {
  console.error(`no test files matched ${suites.join(', ') || '(all)'}`);
  process.exit(1);
}
// A test, hook or suite still running after 5 minutes fails (cancelled, named in the summary) instead of
// holding the run until CI's limit: no test here is meant to take more than a few seconds.
const r = spawnSync(
  process.execPath,
  [
    '--enable-source-maps',
    '--test',
    '--test-concurrency=2',
    '--test-timeout=300000',
    '--test-reporter=spec',
    ...files,
  ],
  { stdio: 'inherit', env: { ...process.env, MPUSH_TEST_RUN: `${process.pid}-${Date.now()}` } },
);
process.exit(r.status ?? 1);
