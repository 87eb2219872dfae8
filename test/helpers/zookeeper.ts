import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zookeeper from 'node-zookeeper-client';
import { freePort } from './free-port.js';

/** Debian's `zookeeper` package puts the server here (`apt-get install zookeeper`). */
const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';

/**
 * A private ZooKeeper for a test: Debian's server, standalone, on a free port with its data in
 * a temporary folder. tickTime 500 ms, so sessions may be as short as 1 s. Missing java or the
 * package → a clear error naming what to install; tests never skip for want of it.
 */
export interface TestZookeeper {
  /** `127.0.0.1:<port>` */
  connect: string;
  /** A client authenticated as `digest` (default MPush's `mpush`), connected; closed by stop(). */
  client(digest?: string | null): Promise<zookeeper.Client>;
  /**
   * Freezes the server (SIGSTOP) for `ms`, then lets it go on: every session idle for longer than
   * its timeout expires when the server wakes, as after a network partition.
   */
  freeze(ms: number): Promise<void>;
  stop(): Promise<void>;
}

/** Connects a client, or rejects after `ms`. */
export function connectZk(
  connect: string,
  opts: { digest?: string | null; sessionId?: Buffer; sessionPassword?: Buffer; ms?: number } = {},
): Promise<zookeeper.Client> {
  const c = zookeeper.createClient(connect, {
    sessionTimeout: 4000,
    spinDelay: 200,
    ...(opts.sessionId ? { sessionId: opts.sessionId, sessionPassword: opts.sessionPassword } : {}),
  } as Partial<zookeeper.Option>);
  if (opts.digest !== null) c.addAuthInfo('digest', Buffer.from(opts.digest ?? 'mpush'));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      c.close();
      reject(new Error(`no zookeeper session at ${connect}`));
    }, opts.ms ?? 2000);
    c.once('connected', () => {
      clearTimeout(t);
      resolve(c);
    });
    c.connect();
  });
}

export async function startTestZookeeper(): Promise<TestZookeeper> {
  if (!existsSync(ZOOKEEPER_JAR))
    throw new Error(`ZooKeeper is not installed (${ZOOKEEPER_JAR} missing): apt-get install zookeeper`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mpush-zk-'));
  const proc: ChildProcess = spawn(
    'java',
    ['-cp', ZOOKEEPER_JAR, 'org.apache.zookeeper.server.ZooKeeperServerMain', String(port), dir, '500'],
    { stdio: 'ignore' },
  );
  const connect = `127.0.0.1:${port}`;
  const clients: zookeeper.Client[] = [];
  const stop = async () => {
    for (const c of clients) c.close();
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // The JVM takes a second or two to listen.
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null)
      throw new Error(`zookeeper exited with ${proc.exitCode} (is java installed?)`);
    try {
      (await connectZk(connect, { ms: 500 })).close();
      break;
    } catch (err) {
      if (i >= 60) {
        await stop();
        throw new Error(`zookeeper on port ${port} did not answer within 30 s: ${(err as Error).message}`);
      }
    }
  }
  return {
    connect,
    async client(digest) {
      const c = await connectZk(connect, { digest });
      clients.push(c);
      return c;
    },
    async freeze(ms) {
      proc.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, ms));
      proc.kill('SIGCONT');
    },
    stop,
  };
}
