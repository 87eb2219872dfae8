import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { DeviceClient, type DeviceClientEvents, WsDeviceClient } from '../../src/client/device/index.js';
import { describeConfig } from '../../src/config/index.js';
import { verifyBindToken } from '../../src/crypto/bind-token.js';
import { waitFor } from '../helpers/wait.js';

/** The compiled CLI, beside this compiled test: dist/test/integration → dist/src/cli. */
const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** Hang guard for start-up and shutdown (the brief's 10 s); never a timing assertion. */
const GUARD = 10_000;

/** The parent's environment without MPUSH_* variables, so a developer's shell cannot change a test. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MPUSH_')) env[k] = v;
  return env;
}

/** Keeps every listener on loopback and on free ports, including those of keys this build may add. */
function loopbackFlags(dataDir: string): string[] {
  const keys = new Set(describeConfig().map((r) => r.key));
  const flags = ['--port', '0', '--http-port', '0', '--data-dir', dataDir, '--host', '127.0.0.1'];
  flags.push('--http.host=127.0.0.1', '--log.level=warn');
  // A node that also listens for push clients (a gateway) must not take a fixed port either.
  if (keys.has('gateway.port')) flags.push('--gateway.port=0');
  if (keys.has('gateway.host')) flags.push('--gateway.host=127.0.0.1');
  if (keys.has('admin.port')) flags.push('--admin.port=0');
  return flags;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

class Cli {
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  readonly proc: ChildProcess;

  /** @param nodeArgs node's own flags, before the script. */
  constructor(args: string[], nodeArgs: string[] = []) {
    this.proc = spawn(process.execPath, [...nodeArgs, cliPath, ...args], {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) => {
      this.proc.once('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /** Waits for the process to end; kills it and fails if it is still running after the guard. */
  async waitExit(): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.proc.kill('SIGKILL');
        reject(new Error(`the CLI did not exit within ${GUARD} ms; stderr:\n${this.stderr}`));
      }, GUARD);
    });
    try {
      return await Promise.race([this.exited, guard]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process if a test left it running. */
  kill(): void {
    if (this.exit === undefined) this.proc.kill('SIGKILL');
  }
}

/** What `mpush start` printed once it listens. */
interface Banner {
  tcpPort: number;
  httpPort: number;
  publicKey: string;
}

function parseBanner(out: string): Banner | undefined {
  const tcp = /TCP[^\n]*:(\d+)\s*$/m.exec(out);
  const http = /HTTP: http:\/\/[^\s/]+:(\d+)/.exec(out);
  // A 1024-bit RSA SubjectPublicKeyInfo in base64 always starts with MIGfMA0G.
  const key = /^\s*(MIGfMA0G[A-Za-z0-9+/]+={0,2})\s*$/m.exec(out);
  if (!tcp || !http || !key) return undefined;
  return { tcpPort: Number(tcp[1]), httpPort: Number(http[1]), publicKey: key[1]! };
}

/** Runs `mpush start` and resolves once it printed where it listens. */
async function startCli(args: string[], nodeArgs: string[] = []): Promise<{ cli: Cli; banner: Banner }> {
  const cli = new Cli(['start', ...args], nodeArgs);
  let banner: Banner | undefined;
  try {
    await waitFor(
      () => {
        if (cli.exit) throw new Error(`mpush start exited (${cli.exit.code}); stderr:\n${cli.stderr}`);
        banner = parseBanner(cli.stdout);
        return banner !== undefined;
      },
      GUARD,
      'the start-up banner',
    );
  } catch (err) {
    cli.kill();
    throw err;
  }
  assert.ok(banner);
  assert.notEqual(banner.tcpPort, 0, 'the real port is printed, not the 0 asked for');
  assert.notEqual(banner.httpPort, 0);
  return { cli, banner };
}

function nextEvent<K extends keyof DeviceClientEvents>(
  client: DeviceClient,
  event: K,
): Promise<DeviceClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${String(event)}`)), GUARD);
    client.once(event, ((...args: DeviceClientEvents[K]) => {
      clearTimeout(timer);
      resolve(args);
    }) as never);
  });
}

/** `p`, or a failure naming `what` after the hang guard. */
function guarded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), GUARD);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

/** Runs a short CLI command to its end. */
async function run(args: string[]): Promise<Cli & { exit: Exit }> {
  const cli = new Cli(args);
  await cli.waitExit();
  return cli as Cli & { exit: Exit };
}

describe('mpush CLI', () => {
  let dir: string;
  const running: Cli[] = [];
  const clients: Array<DeviceClient | WsDeviceClient> = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mpush-cli-'));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    for (const cli of running.splice(0)) cli.kill();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('start', () => {
    it('serves devices with the key it prints, and exits 0 on SIGTERM, disconnecting them', async () => {
      const dataDir = join(dir, 'node-a');
      const { cli, banner } = await startCli(loopbackFlags(dataDir));
      running.push(cli);

      const res = await fetch(`http://127.0.0.1:${banner.httpPort}/public-key`);
      assert.equal(res.status, 200);
      assert.equal((await res.text()).trim(), banner.publicKey, 'GET /public-key serves the printed key');

      const client = new DeviceClient({
        servers: [{ host: '127.0.0.1', port: banner.tcpPort }],
        publicKey: banner.publicKey,
        deviceId: 'cli-device',
        userId: 'cli-user',
        autoReconnect: false,
      });
      clients.push(client);
      const bound = nextEvent(client, 'bind');
      await client.connect();
      await bound;
      assert.equal(client.boundUserId, 'cli-user');

      const health = (await (await fetch(`http://127.0.0.1:${banner.httpPort}/health`)).json()) as {
        onlineUsers: number;
      };
      assert.equal(health.onlineUsers, 1);

      // A web device on the HTTP port as well: the shutdown closes it too.
      const web = new WsDeviceClient({
        url: `ws://127.0.0.1:${banner.httpPort}/`,
        deviceId: 'cli-web',
        userId: 'cli-user',
        WebSocket,
        autoReconnect: false,
      });
      clients.push(web);
      const webBound = guarded(new Promise<void>((resolve) => web.once('bind', () => resolve())), 'ws bind');
      await web.connect();
      await webBound;

      const disconnected = nextEvent(client, 'disconnected');
      const webDisconnected = guarded(
        new Promise<{ reason: string; code?: number }>((resolve) => web.once('disconnected', resolve)),
        'ws disconnected',
      );
      assert.equal(cli.proc.kill('SIGTERM'), true);
      const exit = await cli.waitExit();
      assert.deepEqual(exit, { code: 0, signal: null }, `graceful exit; stderr:\n${cli.stderr}`);
      await disconnected;
      assert.equal((await webDisconnected).code, 1001, 'WebSocket closed with 1001 (going away)');
      assert.equal(client.state, 'idle', 'down, and not reconnecting (autoReconnect: false)');
    });

    it('node.maxSemiSpaceMb: relaunched in a node with that young generation, which dies with the launcher', async () => {
      const { cli, banner } = await startCli([
        ...loopbackFlags(join(dir, 'node-young')),
        '--node.maxSemiSpaceMb=32',
      ]);
      running.push(cli);
      assert.match(cli.stdout, /V8 young generation: --max-semi-space-size=32 \(node\.maxSemiSpaceMb\)/);
      // A crash of the launcher (nothing forwarded) takes the node down too: no server is left behind.
      cli.proc.kill('SIGKILL');
      await cli.waitExit();
      let gone = false;
      for (const end = Date.now() + GUARD; !gone && Date.now() < end; ) {
        gone = await fetch(`http://127.0.0.1:${banner.httpPort}/health`).then(
          () => false,
          () => true,
        );
        if (!gone) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(gone, 'the node is gone with its launcher');
    });

    it("V8's default unless set; node's own --max-semi-space-size wins over node.maxSemiSpaceMb", async () => {
      const plain = await startCli(loopbackFlags(join(dir, 'node-v8')));
      running.push(plain.cli);
      assert.match(plain.cli.stdout, /V8 young generation: V8's default/);
      const own = await startCli(
        [...loopbackFlags(join(dir, 'node-own')), '--node.maxSemiSpaceMb=32'],
        ['--max-semi-space-size=8'],
      );
      running.push(own.cli);
      assert.match(own.cli.stdout, /V8 young generation: --max-semi-space-size=8 /);
      for (const c of [plain.cli, own.cli]) {
        c.proc.kill('SIGTERM');
        assert.deepEqual(await c.waitExit(), { code: 0, signal: null });
      }
    });

    it('warns when limits.maxConnections is above what the process may open', async () => {
      const limits = existsSync('/proc/self/limits') ? readFileSync('/proc/self/limits', 'utf8') : '';
      const files = Number(/Max open files\s+(\d+)/.exec(limits)?.[1]);
      const { cli } = await startCli([
        ...loopbackFlags(join(dir, 'node-files')),
        '--limits.maxConnections=100000000',
      ]);
      running.push(cli);
      if (Number.isFinite(files)) {
        await waitFor(() => cli.stdout.includes('warning: limits.maxConnections'), GUARD, 'the warning');
        assert.match(
          cli.stdout,
          new RegExp(
            `warning: limits\\.maxConnections \\(100000000\\) is above what this process may open \\(${files} files\\)`,
          ),
        );
      } else {
        assert.doesNotMatch(cli.stdout, /warning: limits\.maxConnections/); // no limit known: nothing to warn about
      }
    });

    it('keeps the generated key pair in the data dir: a restart prints the same public key', async () => {
      const dataDir = join(dir, 'node-b');
      const first = await startCli(loopbackFlags(dataDir));
      running.push(first.cli);
      assert.match(first.cli.stdout, /generated/, 'the first start generates a key');
      const keyFile = join(dataDir, 'rsa-key.json');
      assert.ok(existsSync(keyFile));
      assert.equal(statSync(keyFile).mode & 0o077, 0, 'the private key file is readable by its owner only');
      first.cli.proc.kill('SIGTERM');
      assert.equal((await first.cli.waitExit()).code, 0);

      const second = await startCli(loopbackFlags(dataDir));
      running.push(second.cli);
      assert.equal(second.banner.publicKey, first.banner.publicKey);
      assert.doesNotMatch(second.cli.stdout, /generated/);

      // And a device configured with that key still handshakes.
      const client = new DeviceClient({
        servers: [{ host: '127.0.0.1', port: second.banner.tcpPort }],
        publicKey: first.banner.publicKey,
        deviceId: 'cli-device-2',
        autoReconnect: false,
      });
      clients.push(client);
      await client.connect();
      second.cli.proc.kill('SIGTERM');
      assert.equal((await second.cli.waitExit()).code, 0);
    });

    it('prints a different key for another data dir', async () => {
      const a = await startCli(loopbackFlags(join(dir, 'node-c')));
      running.push(a.cli);
      const b = await startCli(loopbackFlags(join(dir, 'node-d')));
      running.push(b.cli);
      assert.notEqual(a.banner.publicKey, b.banner.publicKey);
      a.cli.proc.kill('SIGINT');
      b.cli.proc.kill('SIGTERM');
      assert.equal((await a.cli.waitExit()).code, 0, 'SIGINT also stops gracefully');
      assert.equal((await b.cli.waitExit()).code, 0);
    });

    it('exits non-zero naming an unknown flag or key, before listening', async () => {
      const dataDir = join(dir, 'node-bad');
      for (const [extra, name] of [
        [['--bogus-flag', '1'], 'bogus-flag'],
        [['--server.bogus=1'], 'server.bogus'],
        [['--limits.maxConections=5'], 'limits.maxConections'],
      ] as const) {
        const cli = await run(['start', ...loopbackFlags(dataDir), ...extra]);
        assert.notEqual(cli.exit.code, 0, `exit code for ${extra.join(' ')}`);
        assert.match(cli.stderr, new RegExp(`unknown config key "${name.replace('.', '\\.')}"`));
        assert.equal(cli.stdout, '', 'nothing was started');
      }
    });

    it('exits non-zero naming a bad value', async () => {
      const cli = await run(['start', ...loopbackFlags(join(dir, 'node-bad')), '--port', 'abc']);
      assert.notEqual(cli.exit.code, 0);
      assert.match(cli.stderr, /server\.port must be an integer/);
      assert.doesNotMatch(cli.stderr, /\n\s+at /, 'a config error is one line, not a stack trace');
    });

    it('exits non-zero naming an unknown key in a config file', async () => {
      const file = join(dir, 'bad-config.json');
      writeFileSync(file, JSON.stringify({ server: { prot: 1 } }));
      const cli = await run(['start', ...loopbackFlags(join(dir, 'node-bad')), '--config', file]);
      assert.notEqual(cli.exit.code, 0);
      assert.match(cli.stderr, /unknown config key "server\.prot"/);
    });
  });

  describe('tools', () => {
    it('token prints a bind token that verifyBindToken accepts for that user only', async () => {
      const cli = await run(['token', '--secret', 's', '--user', 'u', '--ttl', '60']);
      assert.equal(cli.exit.code, 0, cli.stderr);
      const token = cli.stdout.trim();
      const now = Math.floor(Date.now() / 1000);
      const check = verifyBindToken('s', 'u', token);
      assert.equal(check.ok, true, JSON.stringify(check));
      assert.ok(check.ok && check.expiresAt > now && check.expiresAt <= now + 61);
      assert.deepEqual(verifyBindToken('s', 'other', token), { ok: false, reason: 'bad-signature' });
      assert.deepEqual(verifyBindToken('t', 'u', token), { ok: false, reason: 'bad-signature' });
    });

    it('token refuses a missing user or a bad ttl', async () => {
      const noUser = await run(['token', '--secret', 's']);
      assert.notEqual(noUser.exit.code, 0);
      assert.match(noUser.stderr, /--user/);
      const badTtl = await run(['token', '--secret', 's', '--user', 'u', '--ttl', '-5']);
      assert.notEqual(badTtl.exit.code, 0);
      assert.match(badTtl.stderr, /--ttl/);
    });

    it('config lists every key with its environment name and default', async () => {
      const cli = await run(['config']);
      assert.equal(cli.exit.code, 0, cli.stderr);
      for (const row of describeConfig()) {
        assert.ok(cli.stdout.includes(`${row.key} (${row.env}, ${row.type}`), `lists ${row.key}`);
      }
      assert.match(
        cli.stdout,
        /limits\.maxConnections \(MPUSH_LIMITS_MAX_CONNECTIONS, int, default 100000\)/,
      );
    });

    it('keygen prints a key pair that start accepts', async () => {
      const cli = await run(['keygen']);
      assert.equal(cli.exit.code, 0, cli.stderr);
      const pair = JSON.parse(cli.stdout) as { privateKey: string; publicKey: string };
      const { cli: node, banner } = await startCli([
        ...loopbackFlags(join(dir, 'node-keygen')),
        '--private-key',
        pair.privateKey,
      ]);
      running.push(node);
      assert.equal(banner.publicKey, pair.publicKey);
      node.proc.kill('SIGTERM');
      assert.equal((await node.waitExit()).code, 0);
    });

    it('every command refuses a misspelt flag, naming it and the flag meant, and does nothing', async () => {
      for (const [args, flag, meant] of [
        [['start', ...loopbackFlags(join(dir, 'node-typo')), '--data-dri', join(dir, 'x')], '--data-dri', ''],
        [['push', '--gateway', '127.0.0.1:1', '--usr', 'u1', '--content', 'x'], '--usr', '--user'],
        [
          ['broadcast', '--gateway', '127.0.0.1:1', '--content', 'x', '--condtion', 'x'],
          '--condtion',
          '--condition',
        ],
        [['token', '--secret', 's', '--usr', 'u'], '--usr', '--user'],
        [['token', '--secret', 's', '--user', 'u', '--tll', '60'], '--tll', '--ttl'],
        [['keygen', '--bits', '2048'], '--bits', ''],
        [['config', '--json'], '--json', ''],
        [['help', '--all'], '--all', ''],
      ] as const) {
        const cli = await run([...args]);
        const what = args.join(' ');
        assert.notEqual(cli.exit.code, 0, `exit code of ${what}`);
        assert.ok(cli.stderr.includes(flag.slice(2)), `${what}: stderr names ${flag}: ${cli.stderr}`);
        if (meant) assert.ok(cli.stderr.includes(`did you mean ${meant}?`), `${what}: ${cli.stderr}`);
        assert.equal(cli.stdout, '', `${what}: nothing done`);
        assert.doesNotMatch(cli.stderr, /\n\s+at /, 'one line, not a stack trace');
      }
    });

    it('a flag given without its value is an error naming it', async () => {
      for (const [args, flag] of [
        [['start', ...loopbackFlags(join(dir, 'node-novalue')), '--port'], '--port'],
        [['start', ...loopbackFlags(join(dir, 'node-novalue')), '--config', '--port', '0'], '--config'],
        [['token', '--secret', 's', '--user'], '--user'],
        [['token', '--secret', '--user', 'u'], '--secret'],
        [['push', '--user', 'u1', '--content', 'x', '--gateway'], '--gateway'],
      ] as const) {
        const cli = await run([...args]);
        const what = args.join(' ');
        assert.notEqual(cli.exit.code, 0, `exit code of ${what}`);
        assert.ok(cli.stderr.includes(`needs ${flag} <value>`), `${what}: ${cli.stderr}`);
        assert.equal(cli.stdout, '', `${what}: nothing done`);
      }
    });

    it('a stray word after a command is an error, not ignored', async () => {
      const cli = await run(['token', 'extra', '--secret', 's', '--user', 'u']);
      assert.notEqual(cli.exit.code, 0);
      assert.match(cli.stderr, /unexpected argument "extra"/);
      assert.equal(cli.stdout, '');
    });

    it('an unknown command prints the usage and exits 2', async () => {
      const cli = await run(['frobnicate']);
      assert.equal(cli.exit.code, 2);
      assert.match(cli.stdout, /usage:/);
    });
  });
});
