// Measuring on a shared machine: wait until no other benchmark runs and the machine is quiet before
// a measured phase, and run a phase again when something else disturbed it.

import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { cpuBetween, sample } from './procstat.js';
import { round } from './report.js';
import { sleep } from './rpc.js';

/** Command lines of the processes matching `pattern` (pgrep -af), none for ''. */
export function otherBenches(pattern: string): string[] {
  if (!pattern) return [];
  try {
    return execFileSync('pgrep', ['-af', pattern], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** What the machine looked like when a measured phase started. */
export interface Quiet {
  waitedSeconds: number;
  loadAverage: number[];
  /** Machine busy percent over the 2 s before the phase (the bench's own processes idle then). */
  machineBusyPercentBefore: number;
  otherBenchRunning: boolean;
}

/**
 * Waits (polling every 10 s, at most `maxMinutes`) until no process matches `pattern` and, unless
 * `quietPercent` is 0, the machine is at most that busy over 2 s.
 */
export async function waitQuiet(
  label: string,
  o: { pattern: string; maxMinutes: number; quietPercent: number },
  log: (m: string) => void,
): Promise<Quiet> {
  const t0 = Date.now();
  for (;;) {
    const running = otherBenches(o.pattern);
    let busy = 0;
    if (running.length === 0 && o.quietPercent > 0) {
      const a = sample([]);
      await sleep(2000);
      busy = cpuBetween(a, sample([])).machineBusyPercent;
    }
    const waited = (Date.now() - t0) / 1000;
    const quiet = running.length === 0 && (o.quietPercent <= 0 || busy <= o.quietPercent);
    if (quiet || waited >= o.maxMinutes * 60) {
      if (!quiet) log(`${label}: machine still busy after ${round(waited)} s; measuring anyway`);
      return {
        waitedSeconds: round(waited),
        loadAverage: os.loadavg().map((x) => round(x, 2)),
        machineBusyPercentBefore: busy,
        otherBenchRunning: running.length > 0,
      };
    }
    log(
      running.length > 0
        ? `${label}: waiting for another benchmark (${running[0]!.slice(0, 100)}) to finish…`
        : `${label}: machine ${busy}% busy before the phase (> ${o.quietPercent}%): waiting…`,
    );
    await sleep(10_000);
  }
}

/**
 * Runs a measured phase up to `maxRuns` times while `disturbed` says what disturbed it (another job
 * took the machine meanwhile); returns the last run, how many there were, and the disturbed ones.
 */
export async function untilUndisturbed<T>(
  label: string,
  maxRuns: number,
  run: () => Promise<T>,
  disturbed: (r: T) => Record<string, unknown> | undefined,
  log: (m: string) => void,
): Promise<{ last: T; attempt: number; disturbedRuns: Array<Record<string, unknown>> }> {
  const runs: Array<Record<string, unknown>> = [];
  for (let attempt = 1; ; attempt++) {
    const last = await run();
    const why = disturbed(last);
    if (!why || attempt >= maxRuns) {
      if (why) log(`${label}: still disturbed after ${attempt} runs; reporting the last`);
      return { last, attempt, disturbedRuns: runs };
    }
    const said = Object.entries(why).filter(([, v]) => typeof v !== 'object');
    log(`${label}: disturbed (${said.map(([k, v]) => `${k} ${v}`).join(', ')}): running it again`);
    runs.push(why);
  }
}
