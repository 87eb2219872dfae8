import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../helpers/free-port.js';

/**
 * Private Redis topologies for tests, spawned from the `redis-server` binary: a 3-master
 * Cluster, and a master watched by one Sentinel. Never skipped: without the binary the error
 * says what to install.
 */
export interface SpawnedServers {
  ports: number[];
  stop(): Promise<void>;
}

function requireBinary(): void {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0)
    throw new Error(
      'the Cluster and Sentinel tests spawn redis-server: install it (apt-get install redis-server)',
    );
}

async function until(cond: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function answers(port: number, cmd: string[], expect: (reply: string) => boolean): Promise<boolean> {
  const c = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  c.on('error', () => {});
  try {
    await c.connect();
    return expect(String(await c.call(cmd[0]!, ...cmd.slice(1))));
  } finally {
    c.disconnect();
  }
}

function start(dir: string, args: string[]): ChildProcess {
  return spawn('redis-server', [...args, '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
}

function stopper(procs: ChildProcess[], dir: string): () => Promise<void> {
  return async () => {
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill();
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
}

/** Three masters forming a Redis Cluster with every slot assigned. */
export async function startRedisCluster(): Promise<SpawnedServers> {
  requireBinary();
  const dir = mkdtempSync(join(tmpdir(), 'mpush-cluster-'));
  const procs: ChildProcess[] = [];
  const stop = stopper(procs, dir);
  try {
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const busPort = await freePort();
      ports.push(port);
      procs.push(
        start(dir, [
          '--port',
          String(port),
          '--cluster-enabled',
          'yes',
          '--cluster-port',
          String(busPort),
          '--cluster-config-file',
          `nodes-${port}.conf`,
        ]),
      );
    }
    for (const p of ports)
      await until(() => answers(p, ['PING'], (r) => r === 'PONG'), `redis-server on ${p}`);
    const create = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    if (create.status !== 0)
      throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    for (const p of ports)
      await until(
        () => answers(p, ['CLUSTER', 'INFO'], (r) => r.includes('cluster_state:ok')),
        `cluster state ok on ${p}`,
      );
    return { ports, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A master (`ports[0]`) and one Sentinel (`ports[1]`) watching it under the name `mymaster`. */
export async function startRedisSentinel(): Promise<SpawnedServers> {
  requireBinary();
  const dir = mkdtempSync(join(tmpdir(), 'mpush-sentinel-'));
  const procs: ChildProcess[] = [];
  const stop = stopper(procs, dir);
  try {
    const master = await freePort();
    const sentinel = await freePort();
    procs.push(start(dir, ['--port', String(master)]));
    await until(() => answers(master, ['PING'], (r) => r === 'PONG'), 'the master');
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      `port ${sentinel}\nsentinel monitor mymaster 127.0.0.1 ${master} 1\nsentinel down-after-milliseconds mymaster 60000\n`,
    );
    procs.push(spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }));
    await until(
      () =>
        answers(sentinel, ['SENTINEL', 'get-master-addr-by-name', 'mymaster'], (r) =>
          r.includes(String(master)),
        ),
      'the sentinel',
    );
    return { ports: [master, sentinel], stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
