import { spawn } from 'node:child_process';
import type { Config } from '../config/index.js';

/** V8's flag for the young generation's semi-space, in MB. */
const SEMI_SPACE_FLAG = '--max-semi-space-size';
/** Set in the environment of the node `mpush start` relaunched, so it watches its launcher. */
const LAUNCHED_ENV = 'MPUSH_LAUNCHED';
const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/**
 * How node's own flags (its command line, then NODE_OPTIONS; `_` for `-` too) set `flag`: the
 * argument that names it (`--flag=value`, or the bare flag), or undefined when none does.
 */
export function nodeFlag(flag: string, execArgv: readonly string[], nodeOptions: string): string | undefined {
  const named = (a: string) => a.split('=')[0]!.replace(/_/g, '-') === flag;
  return execArgv.find(named) ?? nodeOptions.split(/\s+/).find(named);
}

/** This node's semi-space flag, as the start-up banner reports it; undefined when V8's default. */
export function semiSpaceFlag(): string | undefined {
  return nodeFlag(SEMI_SPACE_FLAG, process.execArgv, process.env.NODE_OPTIONS ?? '');
}

/**
 * The node flags `mpush start` adds to those it was started with: the young generation of
 * `node.maxSemiSpaceMb`, unless it is 0 or node already has its own --max-semi-space-size.
 */
export function launchFlags(config: Config, execArgv: readonly string[], nodeOptions: string): string[] {
  const mb = config.node.maxSemiSpaceMb;
  if (mb === 0 || nodeFlag(SEMI_SPACE_FLAG, execArgv, nodeOptions) !== undefined) return [];
  return [`${SEMI_SPACE_FLAG}=${mb}`];
}

/**
 * Runs this same command again in a node started with `flags` (V8 sizes its heap at start, so a
 * flag cannot be applied to a running process): same arguments, stdio and environment; SIGTERM,
 * SIGINT and SIGHUP forwarded; this process exits as the node does. The node dies with this
 * process (see {@link watchLauncher}), so killing either stops the server.
 */
export function relaunch(flags: readonly string[]): void {
  const child = spawn(process.execPath, [...process.execArgv, ...flags, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [LAUNCHED_ENV]: '1' },
  });
  const forward = (signal: NodeJS.Signals) => void child.kill(signal);
  for (const s of FORWARDED) process.on(s, forward);
  child.once('error', (err) => {
    process.stderr.write(`mpush: could not start node: ${err.message}\n`);
    process.exit(1);
  });
  child.once('exit', (code, signal) => {
    for (const s of FORWARDED) process.off(s, forward);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}

/**
 * In a node {@link relaunch} started: when the launcher is gone (killed: it would have forwarded
 * anything else), go at once and as abruptly, so no server outlives the process that was started.
 */
export function watchLauncher(): void {
  if (process.env[LAUNCHED_ENV] !== '1' || !process.channel) return;
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGKILL'));
}
