import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HELP_TABLE } from '../../src/admin/commands.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { mpushDefaultKeys } from '../helpers/shared.js';
import { waitFor } from '../helpers/wait.js';

const EOL = '\r\n';

/** A telnet-like client on a real TCP socket: what `nc 127.0.0.1 3002` would read and write. */
class ConsoleClient {
  text = '';
  ended = false;
  private taken = 0;
  readonly socket: Socket;

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.setEncoding('utf8').on('data', (d: string) => {
      this.text += d;
    });
    this.socket.on('close', () => {
      this.ended = true;
    });
    this.socket.on('error', () => {});
  }

  static async open(port: number): Promise<ConsoleClient> {
    const c = new ConsoleClient(port);
    c.banner = (await c.reply()) + EOL + EOL + (await c.reply());
    return c;
  }

  banner = '';

  /** The next reply: the text up to the empty line that ends every reply. */
  async reply(): Promise<string> {
    await waitFor(() => this.text.indexOf(EOL + EOL, this.taken) >= 0 || this.ended, 5000, 'a reply');
    const end = this.text.indexOf(EOL + EOL, this.taken);
    assert.ok(
      end >= 0,
      `connection closed before a reply; got ${JSON.stringify(this.text.slice(this.taken))}`,
    );
    const r = this.text.slice(this.taken, end);
    this.taken = end + 4;
    return r;
  }

  async ask(line: string): Promise<string> {
    this.socket.write(line + EOL);
    return this.reply();
  }

  /** What came after the last reply, once the server closed the connection. */
  async closedWith(): Promise<string> {
    await waitFor(() => this.ended, 5000, 'the console to close the connection');
    return this.text.slice(this.taken);
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('telnet console (MPush AdminHandler)', () => {
  let t: TestNode;
  let port: number;
  let devices: TestDevice[] = [];
  const clients: ConsoleClient[] = [];
  const open = async (p = port) => {
    const c = await ConsoleClient.open(p);
    clients.push(c);
    return c;
  };

  before(async () => {
    t = await startTestNode({
      gateway: { secret: 'gw-secret-value' },
      api: { secret: 'api-secret-value' },
      auth: { bindSecret: '' },
      admin: { maxLineBytes: 64, maxConnections: 4 },
    });
    port = t.node.addresses.adminPort;
    devices = [await connectDevice(t.tcpPort, 'u1'), await connectDevice(t.tcpPort, 'u2')];
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await waitFor(() => t.node.admin!.openConnections === 0, 3000, 'the console connections to close');
  });
  after(async () => {
    await closeAll(devices);
    await t.stop();
  });

  it("answers the issue's check like MPush: count conn, then quit closes", async () => {
    // printf 'count conn\r\nquit\r\n' | nc 127.0.0.1 3002
    const c = new ConsoleClient(port);
    clients.push(c);
    c.socket.write('count conn\r\nquit\r\n');
    await c.closedWith();
    assert.match(
      c.text,
      /^Welcome to MPush Console \[[0-9.]+\]!\r\nsince \d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{3})?)? has running 0\(h\)\r\n\r\nIt is [A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \S+ \d{4} now\.\r\n\r\n2\r\n\r\nhave a good day!\r\n\r\n$/,
    );
  });

  it('help (and an empty line) prints MPush 0.8.1 option table', async () => {
    const c = await open();
    // The table's lines each end with EOL, and the reply adds its two: three in a row at the end.
    const help = `${HELP_TABLE}${EOL}${EOL}`;
    c.socket.write(`help${EOL}${EOL}HELP${EOL}`);
    await waitFor(() => c.text.length >= c.banner.length + 4 + 3 * help.length, 3000, 'three tables');
    assert.equal(c.text, `${c.banner}${EOL}${EOL}${help}${help}${help}`);
    assert.ok(HELP_TABLE.startsWith(`Option                               Description${EOL}`));
    assert.ok(HELP_TABLE.includes(`push:<uid>, <msg>                    push test msg to client${EOL}`));
  });

  it('count conn / count online, and MPush refusals of other arguments', async () => {
    const c = await open();
    assert.equal(await c.ask('count conn'), '2');
    assert.equal(await c.ask('count online'), '2');
    assert.equal(await c.ask('COUNT online'), '2', 'the option is lower-cased, as MPush does');
    assert.equal(await c.ask('count users'), '[users] unsupported, try help.');
    assert.equal(await c.ask('count'), '[null] unsupported, try help.');
    // Split on single spaces like MPush: two spaces make three tokens, so no argument.
    assert.equal(await c.ask('count  conn'), '[null] unsupported, try help.');
    // \n alone ends a line as well as \r\n.
    c.socket.write('count conn\n');
    assert.equal(await c.reply(), '2');
  });

  it('route <userId>: the routes from the route store, or offline', async () => {
    const c = await open();
    const routes = JSON.parse(await c.ask('route u1')) as Array<{
      routeType: string;
      routeValue: { clientType: number; host: string; port: number; connId: string; deviceId: string };
    }>;
    assert.equal(routes.length, 1);
    assert.equal(routes[0]!.routeType, 'REMOTE');
    const stored = (await t.node.stores.routes.lookup('u1')).get(routes[0]!.routeValue.clientType)!;
    assert.equal(routes[0]!.routeValue.connId, stored.connId);
    assert.equal(routes[0]!.routeValue.port, t.node.addresses.gatewayPort);
    assert.equal(await c.ask('route nobody'), 'user [nobody] offline now.');
    assert.equal(await c.ask('route'), 'please input userId');
  });

  it('push <userId> <msg>: a real push through the node, the rest of the line as the message', async () => {
    const c = await open();
    const before = devices[0]!.pushes.length;
    assert.equal(await c.ask('push u1 hello world, from the console'), 'user [u1] mobile: success');
    await waitFor(() => devices[0]!.pushes.length > before, 3000, 'the push at the device');
    assert.equal(devices[0]!.pushes.at(-1)!.content.toString(), 'hello world, from the console');
    assert.match(await c.ask('push nobody hi'), /^user \[nobody\]: offline/);
    assert.equal(await c.ask('push u1'), 'usage: push <userId> <msg>');
  });

  it('conf [key]: config values, never a secret', async () => {
    const c = await open();
    const all = await c.ask('conf');
    assert.ok(!all.includes('gw-secret-value') && !all.includes('api-secret-value'), 'no secret shown');
    const parsed = JSON.parse(all) as Record<string, Record<string, unknown>>;
    assert.equal(parsed.gateway!.secret, '<redacted>');
    assert.equal(parsed.api!.secret, '<redacted>');
    assert.equal(parsed.security!.privateKey, '<redacted>');
    assert.equal(parsed.auth!.bindSecret, '', 'an unset secret reads as empty');
    assert.equal(parsed.server!.port, 0);
    assert.equal(await c.ask('conf admin.maxLineBytes'), '64');
    assert.equal(await c.ask('conf gateway.secret'), '<redacted>');
    assert.equal(JSON.parse(await c.ask('conf api')).secret, '<redacted>');
    assert.equal(await c.ask('conf nope.key'), 'key [nope.key] not find in config');
    assert.equal(await c.ask('conf server.port.more'), 'key [server.port.more] not find in config');
  });

  it('zk: the node registry', async () => {
    const c = await open();
    const nodes = JSON.parse(await c.ask('zk')) as Array<{ id: string; gatewayPort: number }>;
    assert.deepEqual(
      nodes.map((n) => n.id),
      [t.node.id],
    );
    assert.deepEqual(JSON.parse(await c.ask('zk gs')), [
      { host: '127.0.0.1', port: t.node.addresses.gatewayPort },
    ]);
    assert.deepEqual(JSON.parse(await c.ask('zk cs')), [{ host: '127.0.0.1', port: t.tcpPort }]);
    assert.equal(await c.ask('zk redis'), 'no redis: this node keeps its stores in memory');
    assert.equal(await c.ask('zk foo'), '[foo] unsupported, try help.');
  });

  it('an unknown command gets "unsupported option"; shutdown is refused by default', async () => {
    const c = await open();
    assert.equal(await c.ask('restart'), 'unsupported option');
    assert.equal(await c.ask('frobnicate now'), 'unsupported option');
    assert.equal(await c.ask('shutdown'), 'shutdown refused: admin.allowShutdown is false on this node');
    assert.equal(await c.ask('count conn'), '2', 'still up, still answering');
  });

  it('a bad byte stream is answered or closed, and only that connection goes', async () => {
    const other = await open();
    const bad = await open();
    bad.socket.write(Buffer.from([0xff, 0xfb, 0x01, 0x00, 0xc3, 0x28, 0x0a]));
    assert.equal(
      await bad.reply(),
      'unsupported option',
      'binary garbage on one line is just an unknown option',
    );
    bad.socket.write(Buffer.alloc(4096, 0xaa)); // no newline, past admin.maxLineBytes
    assert.equal(await bad.closedWith(), `line too long: more than 64 bytes (admin.maxLineBytes)${EOL}`);
    assert.equal(await other.ask('count conn'), '2');
    assert.equal(t.node.connections.connections.size, 2, 'the devices are untouched');
  });

  it('a line just over admin.maxLineBytes closes even when its newline came with it', async () => {
    const c = await open();
    assert.equal(await c.ask(`conf ${'x'.repeat(59)}`), `key [${'x'.repeat(59)}] not find in config`); // 64 bytes
    c.socket.write(`conf ${'x'.repeat(60)}\r\n`);
    assert.match(await c.closedWith(), /^line too long/);
  });

  it('admin.maxConnections: one connection more is told so and closed', async () => {
    const held: ConsoleClient[] = [];
    for (let i = 0; i < 4; i++) held.push(await open());
    const extra = new ConsoleClient(port);
    clients.push(extra);
    assert.equal(await extra.closedWith(), `too many console connections (admin.maxConnections=4)${EOL}`);
    assert.equal(await held[0]!.ask('count conn'), '2');
  });
});

describe('telnet console: limits and shutdown', () => {
  it('admin.idleTimeoutMs: a silent connection is told and closed', async () => {
    const t = await startTestNode({ admin: { idleTimeoutMs: 200 } });
    try {
      const c = await ConsoleClient.open(t.node.addresses.adminPort);
      assert.equal(await c.closedWith(), `idle for 200 ms (admin.idleTimeoutMs), bye${EOL}`);
    } finally {
      await t.stop();
    }
  });

  it('admin.maxOutboundBytes: a console that never reads its replies is dropped', async () => {
    const t = await startTestNode({ admin: { maxOutboundBytes: 1024 } });
    try {
      const c = await ConsoleClient.open(t.node.addresses.adminPort);
      c.socket.pause();
      c.socket.write('help\n'.repeat(20_000)); // ~14 MB of replies
      await waitFor(() => t.node.admin!.stats.slowReaders === 1, 10_000, 'the slow reader to be dropped');
      const fresh = await ConsoleClient.open(t.node.addresses.adminPort);
      assert.equal(await fresh.ask('count conn'), '0');
      fresh.close();
      c.close();
    } finally {
      await t.stop();
    }
  });

  it('admin.enabled=false: no console port', async () => {
    const t = await startTestNode({ admin: { enabled: false } });
    try {
      assert.equal(t.node.admin, undefined);
      assert.equal(t.node.addresses.adminPort, 0);
    } finally {
      await t.stop();
    }
  });

  it('admin.allowShutdown: shutdown answers as MPush and stops the node gracefully', async () => {
    const t = await startTestNode({ admin: { allowShutdown: true } });
    const device = await connectDevice(t.tcpPort, 'u1');
    const disconnected = new Promise((r) => device.client.once('disconnected', r));
    try {
      const c = await ConsoleClient.open(t.node.addresses.adminPort);
      assert.equal(await c.ask('shutdown'), 'try close connect server...');
      await c.closedWith();
      await disconnected; // the node closed its device connections: it stopped
      await waitFor(
        () => t.node.connections.connections.size === 0,
        5000,
        'the node to close every connection',
      );
      const refused = await new Promise<boolean>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: t.tcpPort });
        s.on('connect', () => resolve(false));
        s.on('error', () => resolve(true));
      });
      assert.ok(refused, 'the device port is closed');
    } finally {
      await device.client.close();
      await t.stop();
    }
  });
});

/** The compiled CLI, beside this compiled test: dist/test/integration → dist/src/cli. */
const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

describe('telnet console of `mpush start`', () => {
  it("prints where the console listens, answers the issue's nc check, and shutdown ends the process", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'mpush-admin-cli-'));
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MPUSH_')) env[k] = v;
    const args = ['start', '--port', '0', '--http-port', '0', '--gateway-port', '0', '--admin-port', '0'];
    args.push(
      '--host',
      '127.0.0.1',
      '--http.host=127.0.0.1',
      '--gateway.host=127.0.0.1',
      '--data-dir',
      dataDir,
    );
    args.push(`--security.privateKey=${mpushDefaultKeys().privateKey}`, '--admin.allowShutdown=true');
    const proc = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    try {
      await waitFor(
        () => /telnet console \(MPush's; no login\): 127\.0\.0\.1:\d+/.test(stdout),
        15_000,
        'the banner',
      );
      const port = Number(/telnet console \(MPush's; no login\): 127\.0\.0\.1:(\d+)/.exec(stdout)![1]);
      assert.notEqual(port, 0);
      if (existsSync('/usr/bin/nc')) {
        // The issue's own check, as printed: printf 'count conn\r\nquit\r\n' | nc 127.0.0.1 3002
        const out = await new Promise<string>((resolve, reject) => {
          const sh = execFile(
            '/bin/sh',
            ['-c', `printf 'count conn\\r\\nquit\\r\\n' | nc 127.0.0.1 ${port}`],
            (err, o) => (err ? reject(err) : resolve(o)),
          );
          setTimeout(() => sh.kill(), 10_000).unref();
        });
        assert.match(
          out,
          /^Welcome to MPush Console \[[0-9.]+\]!\r\n[\s\S]*now\.\r\n\r\n0\r\n\r\nhave a good day!\r\n\r\n$/,
        );
      }
      const c = await ConsoleClient.open(port);
      assert.equal(await c.ask('shutdown'), 'try close connect server...');
      assert.equal(await exited, 0, 'the node stopped as on SIGTERM');
    } finally {
      proc.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
