import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { decodeRoute } from '../../src/cluster/redis-route-store.js';
import type { Route } from '../../src/cluster/route-store.js';
import { mpushDefaultKeys } from './shared.js';

/** The compiled CLI: dist/test/helpers → dist/src/cli/main.js. */
const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Hang guard for start-up and shutdown; never a timing assertion. */
const GUARD_MS = 15_000;

export interface SpawnNodeOptions {
  redisUrl: string;
  /** `cluster.prefix`: the test's own, so runs and files never share keys. */
  prefix: string;
  registryTtlMs?: number;
  registryRefreshMs?: number;
  /** More `mpush start` flags (`--push.defaultTimeoutMs=…`). */
  extraArgs?: string[];
}

/** A `mpush start` child process, a cluster node on Redis. */
export interface NodeProcess {
  proc: ChildProcess;
  /** Node id (`<gateway host>:<gateway port>`). */
  id: string;
  tcpPort: number;
  httpPort: number;
  gatewayPort: number;
  /** What the process printed so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** True until the process exits. */
  readonly alive: boolean;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (graceful SIGTERM by default) and resolves on exit (SIGKILL after a guard). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** SIGKILL: a crash, nothing cleaned up. Resolves on exit. */
  kill(): Promise<void>;
}

let dataDir: string | undefined;
const running = new Set<ChildProcess>();

/** One data dir for every node of this test process (the key comes from flags, not from it). */
function sharedDataDir(): string {
  if (!dataDir) {
    const dir = mkdtempSync(join(tmpdir(), 'mpush-procs-'));
    dataDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return dataDir;
}

// A test process that dies must not leave nodes behind.
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/** The parent's environment without MPUSH_* variables: a developer's shell cannot change a node. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MPUSH_')) env[k] = v;
  return env;
}

interface Banner {
  id: string;
  tcpPort: number;
  gatewayPort: number;
  httpPort: number;
}

function parseBanner(out: string): Banner | undefined {
  const id = /^mpush-ts node (\S+) started/m.exec(out);
  const tcp = /TCP \(MPush binary protocol\): \S+:(\d+)\s*$/m.exec(out);
  const gateway = /gateway \(push clients, PushSender\): \S+:(\d+)\s*$/m.exec(out);
  const http = /HTTP: http:\/\/[^\s/]+:(\d+)/.exec(out);
  if (!id || !tcp || !gateway || !http) return undefined;
  return {
    id: id[1]!,
    tcpPort: Number(tcp[1]),
    gatewayPort: Number(gateway[1]),
    httpPort: Number(http[1]),
  };
}

/**
 * Starts `node dist/src/cli/main.js start` as a cluster node on `redisUrl` under `prefix`, every
 * listener on 127.0.0.1 and a free port, with MPush's default key pair (so every node, and the
 * test's devices, share it). Resolves once the node printed its ports.
 */
export async function spawnNode(opts: SpawnNodeOptions): Promise<NodeProcess> {
  const keys = mpushDefaultKeys();
  const args = [
    cliPath,
    'start',
    '--redis',
    opts.redisUrl,
    `--cluster.prefix=${opts.prefix}`,
    '--port',
    '0',
    '--http-port',
    '0',
    '--gateway-port',
    '0',
    '--host',
    '127.0.0.1',
    '--http.host=127.0.0.1',
    '--gateway.host=127.0.0.1',
    '--admin.port=0',
    '--data-dir',
    sharedDataDir(),
    `--security.privateKey=${keys.privateKey}`,
    `--security.publicKey=${keys.publicKey}`,
    '--log.level=warn',
    `--cluster.registryTtlMs=${opts.registryTtlMs ?? 1500}`,
    `--cluster.registryRefreshMs=${opts.registryRefreshMs ?? 300}`,
    ...(opts.extraArgs ?? []),
  ];
  const proc = spawn(process.execPath, args, { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let stdout = '';
  let stderr = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      exit = { code, signal };
      running.delete(proc);
      resolve(exit);
    });
  });

  const banner = await new Promise<Banner>((resolve, reject) => {
    const guard = setTimeout(() => {
      done();
      proc.kill('SIGKILL');
      reject(new Error(`mpush start printed no ports within ${GUARD_MS} ms; stderr:\n${stderr}`));
    }, GUARD_MS);
    const check = () => {
      const b = parseBanner(stdout);
      if (b) {
        done();
        resolve(b);
      }
    };
    const onExit = () => {
      done();
      reject(new Error(`mpush start exited (${exit?.code ?? exit?.signal}); stderr:\n${stderr}`));
    };
    const done = () => {
      clearTimeout(guard);
      proc.stdout!.off('data', check);
      proc.off('exit', onExit);
    };
    proc.stdout!.on('data', check);
    proc.once('exit', onExit);
  });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (exit) return;
    proc.kill(signal);
    const guard = setTimeout(() => proc.kill('SIGKILL'), GUARD_MS);
    try {
      await exited;
    } finally {
      clearTimeout(guard);
    }
  };

  return {
    proc,
    ...banner,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    get alive() {
      return exit === undefined;
    },
    exited,
    stop,
    kill: () => stop('SIGKILL'),
  };
}

/** A JSON request to a node's HTTP API; fails on a non-2xx status, naming it and the body. */
export async function api<T = unknown>(
  node: Pick<NodeProcess, 'httpPort'>,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/**
 * Polls `probe` until it returns something other than `undefined`/`false`, and returns that; fails
 * after `timeoutMs` naming `what` (and the last error the probe threw). A hang guard, not a timing
 * assertion.
 */
export async function eventually<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Ids of the nodes the Redis registry under `prefix` lists as live (their TTL key exists). */
export async function liveNodeIds(redis: Redis, prefix: string): Promise<string[]> {
  const ids = (await redis.smembers(`${prefix}{nodes}`)).sort();
  if (ids.length === 0) return [];
  const values = await redis.mget(ids.map((id) => `${prefix}{nodes}:${id}`));
  return ids.filter((_, i) => values[i] != null);
}

/** The route of (user, client type) in Redis, MPush's `<prefix>ur:<userId>` hash. */
export async function routeOf(
  redis: Redis,
  prefix: string,
  userId: string,
  clientType = 1,
): Promise<Route | undefined> {
  const json = await redis.hget(`${prefix}ur:${userId}`, String(clientType));
  return json === null ? undefined : decodeRoute(json);
}
