import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { connect as connectTcp, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { loadServerTls } from '../../src/certificates.js';
import { type ClientTlsOptions, PushSender } from '../../src/client/push/index.js';
import { type Config, ConfigError, type DeepPartial, loadConfig } from '../../src/config/index.js';
import { ClientType } from '../../src/protocol/index.js';
import { makeTestPki, type TestPki } from '../helpers/certs.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { type Run, runToEnd } from '../helpers/run.js';
import { mpushDefaultKeys } from '../helpers/shared.js';
import { waitFor } from '../helpers/wait.js';

// TLS with real TLS clients: openssl s_client, Node's tls (the device SDK, PushSender, https),
// and the CLI as a process (its --tls-self-signed certificate, SIGHUP). The certificates are made
// per run (test/helpers/certs.ts) in a temporary directory.

const OPENSSL = '/usr/bin/openssl';
const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** Hang guard for children and awaited events; never a timing assertion. */
const GUARD = 20_000;

/** Runs `openssl s_client` against 127.0.0.1:port, writing `input`, to its end. */
function sClient(port: number, args: string[], input = ''): Promise<Run> {
  return runToEnd(OPENSSL, ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { input, guardMs: GUARD });
}

/** The server's leaf certificate in s_client's output (-showcerts prints the chain, leaf first). */
function leafOf(out: string): X509Certificate {
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out);
  assert.ok(pem, `no certificate in:\n${out}`);
  return new X509Certificate(pem[0]);
}

/** One HTTPS request trusting `ca`; resolves with status and body. */
function httpsRequest(
  port: number,
  ca: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        ca,
        method: body === undefined ? 'GET' : 'POST',
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** A TLS connection trusting `ca`: the certificate the server presents now. */
async function presented(port: number, ca: string): Promise<{ socket: TLSSocket; fingerprint: string }> {
  const socket = connectTls({ host: '127.0.0.1', port, ca });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return { socket, fingerprint: socket.getPeerX509Certificate()!.fingerprint256 };
}

function sender(gatewayPort: number, tls: ClientTlsOptions): PushSender {
  return PushSender.create({
    gateways: [{ host: '127.0.0.1', port: gatewayPort }],
    tls,
    timeout: 3000,
    connectTimeoutMs: 3000,
    reconnectMaxMs: 200,
    logger: { error() {}, warn() {} },
  });
}

describe('TLS on the device port, HTTPS and the gateway', () => {
  let pki: TestPki;
  let t: TestNode;
  let tlsPort: number;
  let httpsPort: number;
  let gatewayPort: number;
  /** The files the node reads: a reload test swaps what they hold. */
  let live: { dir: string; cert: string; key: string };
  const devices: TestDevice[] = [];

  before(async () => {
    pki = await makeTestPki();
    const dir = mkdtempSync(join(tmpdir(), 'mpush-live-cert-'));
    live = { dir, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
    copyFileSync(pki.server.certFile, live.cert);
    copyFileSync(pki.server.keyFile, live.key);
    t = await startTestNode({
      tls: { enabled: true, port: 0, cert: live.cert, key: live.key, ca: pki.ca.certFile },
      https: { enabled: true, port: 0 },
      gateway: { tls: true },
    });
    ({ tlsPort, httpsPort, gatewayPort } = t.node.addresses);
  });
  after(async () => {
    await closeAll(devices);
    await t?.stop();
    pki?.remove();
    if (live) rmSync(live.dir, { recursive: true, force: true });
  });

  it('openssl s_client verifies the device TLS port against the CA', async () => {
    const run = await sClient(tlsPort, ['-CAfile', pki.ca.certFile, '-verify_return_error', '-showcerts']);
    assert.match(run.stdout, /Verify return code: 0 \(ok\)/, run.stderr);
    assert.equal(leafOf(run.stdout).fingerprint256, pki.server.fingerprint256);
    // Nothing of MPush is spoken before the device's handshake: the handshake alone left no device.
    assert.match(run.stdout, /TLSv1\.3/);
  });

  it('openssl s_client refuses the device TLS port against a CA that did not sign it', async () => {
    const run = await sClient(tlsPort, ['-CAfile', pki.otherCa.certFile, '-verify_return_error']);
    assert.notEqual(run.code, 0);
    assert.match(run.stdout + run.stderr, /unable to get local issuer certificate|verify error/);
  });

  it('serves the HTTP routes over HTTPS: /health through openssl s_client, /public-key and /alloc', async () => {
    const run = await sClient(
      httpsPort,
      ['-CAfile', pki.ca.certFile, '-verify_return_error', '-servername', 'localhost', '-ign_eof', '-quiet'],
      'GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
    );
    assert.match(run.stdout, /^HTTP\/1\.1 200 OK/, run.stderr);
    assert.match(run.stdout, /"status":"ok"/);
    const key = await httpsRequest(httpsPort, pki.ca.cert, '/public-key');
    assert.equal(key.body.trim(), t.node.keys.publicKeyBase64);
    // The allocator keeps answering with the plain TCP port (MPush's SDKs speak no TLS); ?tls=1 the TLS one.
    assert.equal((await httpsRequest(httpsPort, pki.ca.cert, '/alloc')).body, `127.0.0.1:${t.tcpPort}`);
    assert.equal((await httpsRequest(httpsPort, pki.ca.cert, '/alloc?tls=1')).body, `127.0.0.1:${tlsPort}`);
  });

  it('carries a device SDK over TLS (CA pinned): handshake, bind, and a push from a PushSender over the TLS gateway', async () => {
    const d = await connectDevice(tlsPort, 'tls-user', { tls: { ca: pki.ca.cert } });
    devices.push(d);
    const conn = t.node.connections.router.get('tls-user', ClientType.MOBILE);
    assert.equal(conn?.transport.kind, 'tls');
    const s = sender(gatewayPort, { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key });
    try {
      const [r] = await s.send({ userId: 'tls-user', content: 'over tls, both ways' });
      assert.equal(r?.result, 'success', r?.reason);
      await waitFor(() => d.pushes.length === 1, GUARD, 'the push');
      assert.equal(d.pushes[0]!.content.toString(), 'over tls, both ways');
    } finally {
      await s.stop();
    }
  });

  it('pushes through the HTTP API over HTTPS: the node reaches its TLS gateway with its own certificate', async () => {
    const d = await connectDevice(tlsPort, 'api-user', { tls: { ca: pki.ca.cert } });
    devices.push(d);
    const res = await httpsRequest(httpsPort, pki.ca.cert, '/api/push', {
      userId: 'api-user',
      content: 'via https',
    });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(
      (JSON.parse(res.body) as { results: Array<{ result: string }> }).results.map((r) => r.result),
      ['success'],
    );
    await waitFor(() => d.pushes.length === 1, GUARD, 'the push');
  });

  it('refuses a device that pins another CA: no handshake, no connection on the node', async () => {
    const before = t.node.connections.stats.accepted;
    await assert.rejects(
      connectDevice(tlsPort, 'pinned-wrong', { tls: { ca: pki.otherCa.cert } }),
      /certificate/,
    );
    assert.equal(t.node.connections.stats.accepted, before);
  });

  it('requires a client certificate signed by tls.ca on the gateway: none, or another CA’s, is refused', async () => {
    const failuresBefore = t.node.gateway.stats.tlsFailures;
    for (const tls of [
      { ca: pki.ca.cert },
      { ca: pki.ca.cert, cert: pki.rogueClient.cert, key: pki.rogueClient.key },
    ]) {
      const s = sender(gatewayPort, tls);
      try {
        const [r] = await s.send({ userId: 'tls-user', content: 'must not arrive' });
        assert.equal(r?.result, 'failure');
        assert.match(r?.reason ?? '', /certificate|alert|closed|lost/);
      } finally {
        await s.stop();
      }
    }
    assert.ok(t.node.gateway.stats.tlsFailures >= failuresBefore + 2);
    assert.ok(devices.every((d) => !d.pushes.some((p) => p.content.toString() === 'must not arrive')));
  });

  it('reloads the certificate under load: connected devices stay and get pushes, new connections get the new certificate', async () => {
    const load = await Promise.all(
      Array.from({ length: 20 }, (_, i) => connectDevice(tlsPort, `load-${i}`, { tls: { ca: pki.ca.cert } })),
    );
    devices.push(...load);
    let drops = 0;
    for (const d of load) d.client.on('disconnected', () => drops++);
    const s = sender(gatewayPort, { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key });
    const results: string[] = [];
    let pushing = true;
    const pusher = (async () => {
      let n = 0;
      while (pushing) {
        const batch = await s.send({ userIds: load.map((_, i) => `load-${i}`), content: `tick ${n++}` });
        results.push(...batch.map((r) => r.result));
      }
    })();
    try {
      await waitFor(() => results.length >= 200, GUARD, 'pushes before the reload');
      assert.equal((await presented(tlsPort, pki.ca.cert)).fingerprint, pki.server.fingerprint256);
      copyFileSync(pki.server2.certFile, live.cert);
      copyFileSync(pki.server2.keyFile, live.key);
      const reloaded = t.node.reloadTls();
      assert.equal(reloaded?.fingerprint256, pki.server2.fingerprint256);
      const atReload = results.length;
      await waitFor(() => results.length >= atReload + 200, GUARD, 'pushes after the reload');
      pushing = false;
      await pusher;
      // Every port that speaks TLS presents the new certificate to a new connection.
      for (const port of [tlsPort, httpsPort]) {
        const { socket, fingerprint } = await presented(port, pki.ca.cert);
        socket.destroy();
        assert.equal(fingerprint, pki.server2.fingerprint256);
      }
      const gw = connectTls({
        host: '127.0.0.1',
        port: gatewayPort,
        ca: pki.ca.cert,
        cert: pki.client.cert,
        key: pki.client.key,
      });
      await new Promise((r) => gw.once('secureConnect', r));
      assert.equal(gw.getPeerX509Certificate()?.fingerprint256, pki.server2.fingerprint256);
      gw.destroy();
      assert.equal(drops, 0);
      assert.deepEqual([...new Set(results)], ['success']);
      assert.ok(load.every((d) => d.client.state === 'ready' && d.client.boundUserId !== undefined));
      assert.ok(load.every((d) => d.pushes.length >= 3));
      // A device that connected before the reload still gets a push sent after it.
      const [late] = await s.send({ userId: 'load-0', content: 'after the reload' });
      assert.equal(late?.result, 'success');
      await waitFor(
        () => load[0]!.pushes.some((p) => p.content.toString() === 'after the reload'),
        GUARD,
        'the push after the reload',
      );
    } finally {
      pushing = false;
      await pusher.catch(() => {});
      await s.stop();
      copyFileSync(pki.server.certFile, live.cert);
      copyFileSync(pki.server.keyFile, live.key);
    }
  });
});

describe('TLS configuration', () => {
  let pki: TestPki;
  before(async () => {
    pki = await makeTestPki();
  });
  after(() => pki?.remove());

  const config = (over: DeepPartial<Config>) => loadConfig({ overrides: over });

  it('a TLS port without tls.cert and tls.key is a start-up error naming the keys', () => {
    const ons: DeepPartial<Config>[] = [
      { tls: { enabled: true } },
      { https: { enabled: true } },
      { gateway: { tls: true } },
    ];
    for (const on of ons) {
      assert.throws(
        () => loadServerTls(config(on)),
        (e: Error) => {
          assert.ok(e instanceof ConfigError);
          assert.match(e.message, /needs tls\.cert and tls\.key/);
          return true;
        },
      );
    }
    assert.throws(
      () => loadServerTls(config({ tls: { ca: pki.ca.certFile } })),
      /tls\.ca .* needs gateway\.tls/,
    );
  });

  it('a key that is not the certificate’s, or a missing file, is a start-up error', () => {
    const on = { enabled: true, cert: pki.server.certFile };
    assert.throws(() => loadServerTls(config({ tls: { ...on, key: pki.server2.keyFile } })), /unusable/);
    assert.throws(
      () => loadServerTls(config({ tls: { ...on, key: join(pki.dir, 'nope.key') } })),
      /tls\.key: cannot read/,
    );
    assert.equal(loadServerTls(config({})), undefined);
  });

  it('limits.maxConnections counts sockets still in their TLS handshake; limits.handshakeTimeoutMs (gateway.authTimeoutMs on the gateway) closes them', async () => {
    const t = await startTestNode({
      tls: { enabled: true, port: 0, cert: pki.server.certFile, key: pki.server.keyFile },
      limits: { maxConnections: 2, handshakeTimeoutMs: 300 },
      gateway: { tls: true, authTimeoutMs: 300 },
    });
    const sockets: Socket[] = [];
    try {
      const closed = new Set<number>();
      for (let i = 0; i < 3; i++) {
        const s = connectTcp({ host: '127.0.0.1', port: t.node.addresses.tlsPort });
        s.on('error', () => {});
        s.on('close', () => closed.add(i));
        sockets.push(s);
        await new Promise((r) => s.once('connect', r));
      }
      // The third is over the limit: closed at once, while the two that never say hello stay, until
      // their handshake deadline.
      await waitFor(() => closed.has(2), GUARD, 'the socket over the limit to close');
      assert.ok(!closed.has(0) && !closed.has(1));
      await waitFor(() => closed.size === 3, GUARD, 'the handshake deadline');
      assert.equal(t.node.connections.stats.accepted, 0);
      // The TLS gateway too: a push client that never says hello is gone by gateway.authTimeoutMs.
      const gw = connectTcp({ host: '127.0.0.1', port: t.node.addresses.gatewayPort });
      gw.on('error', () => {});
      sockets.push(gw);
      await new Promise((r) => gw.once('close', r));
      assert.equal(t.node.gateway.stats.tlsFailures, 1);
    } finally {
      for (const s of sockets) s.destroy();
      await t.stop();
    }
  });

  it('turns the plain ports off: no TCP or HTTP port, /alloc (for MPush SDKs) lists no node', async () => {
    const t = await startTestNode({
      server: { enabled: false },
      http: { enabled: false },
      node: { publicTlsPort: 4443 },
      tls: { enabled: true, port: 0, cert: pki.server.certFile, key: pki.server.keyFile },
      https: { enabled: true, port: 0 },
    });
    try {
      const a = t.node.addresses;
      assert.equal(a.tcpPort, 0);
      assert.equal(a.httpPort, 0);
      assert.notEqual(a.tlsPort, 0);
      assert.equal((await httpsRequest(a.httpsPort, pki.ca.cert, '/alloc')).status, 503);
      // The TLS port as advertised (node.publicTlsPort: behind NAT or a load balancer).
      assert.equal((await httpsRequest(a.httpsPort, pki.ca.cert, '/alloc?tls=1')).body, '127.0.0.1:4443');
      const d = await connectDevice(a.tlsPort, 'only-tls', { tls: { ca: pki.ca.cert } });
      await d.client.close();
    } finally {
      await t.stop();
    }
  });
});

/** `mpush <args>` as a child process, with what it printed so far. */
function mpush(args: string[]): { proc: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  return { proc, out: () => out, exited };
}

describe('mpush start --tls-self-signed, SIGHUP, and mpush push --tls', () => {
  let pki: TestPki;
  let dataDir: string;
  let node: ReturnType<typeof mpush> | undefined;

  before(async () => {
    pki = await makeTestPki();
    dataDir = mkdtempSync(join(tmpdir(), 'mpush-dev-cert-'));
  });
  after(async () => {
    if (node && node.proc.exitCode === null) {
      node.proc.kill('SIGTERM');
      await node.exited;
    }
    pki?.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a TLS port configured without a certificate stops the start with a clear error', async () => {
    const run = mpush(['start', '--data-dir', dataDir, '--port', '0', '--tls.enabled=true']);
    assert.equal(await run.exited, 1);
    assert.match(run.out(), /tls\.enabled needs tls\.cert and tls\.key .*--tls-self-signed/);
  });

  it('makes a development certificate, serves TLS with it, reloads on SIGHUP without dropping a connection; mpush push --tls reaches the gateway', async () => {
    const keys = mpushDefaultKeys();
    node = mpush([
      'start',
      '--tls-self-signed',
      '--data-dir',
      dataDir,
      '--host',
      '127.0.0.1',
      '--http.host=127.0.0.1',
      '--gateway.host=127.0.0.1',
      '--port',
      '0',
      '--http-port',
      '0',
      '--gateway-port',
      '0',
      '--tls.port=0',
      '--https.port=0',
      '--gateway.tls=true',
      `--security.privateKey=${keys.privateKey}`,
      `--security.publicKey=${keys.publicKey}`,
    ]);
    const n = node;
    await waitFor(() => /TLS certificate: /.test(n.out()) || n.proc.exitCode !== null, GUARD, 'the banner');
    const out = n.out();
    const certFile = join(dataDir, 'tls-dev-cert.pem');
    assert.match(out, new RegExp(`TLS certificate: ${certFile} \\(self-signed, generated\\)`), out);
    assert.equal(statSync(join(dataDir, 'tls-dev-key.pem')).mode & 0o777, 0o600);
    const devCert = readFileSync(certFile, 'utf8');
    const tlsPort = Number(/devices, TLS \(MPush binary protocol\): \S+:(\d+)/.exec(out)?.[1]);
    const gatewayPort = Number(/gateway \(push clients, PushSender\), TLS: \S+:(\d+)/.exec(out)?.[1]);
    assert.ok(tlsPort > 0 && gatewayPort > 0, out);
    const dev = new X509Certificate(devCert);

    // The certificate names localhost and 127.0.0.1: s_client verifies it as its own CA.
    const run = await sClient(tlsPort, [
      '-CAfile',
      certFile,
      '-verify_return_error',
      '-verify_ip',
      '127.0.0.1',
    ]);
    assert.match(run.stdout, /Verify return code: 0 \(ok\)/, run.stderr);

    // A device bound before the reload...
    const d = await connectDevice(tlsPort, 'cli-user', { tls: { ca: devCert } });
    let dropped = false;
    d.client.on('disconnected', () => {
      dropped = true;
    });
    try {
      // ...SIGHUP with other files in the same places...
      copyFileSync(pki.server2.certFile, certFile);
      copyFileSync(pki.server2.keyFile, join(dataDir, 'tls-dev-key.pem'));
      n.proc.kill('SIGHUP');
      await waitFor(() => /tls certificates reloaded/.test(n.out()), GUARD, 'the reload');
      // ...new connections get the new certificate, the old one stays and gets a push.
      const now = await presented(tlsPort, pki.ca.cert);
      now.socket.destroy();
      assert.equal(now.fingerprint, pki.server2.fingerprint256);
      assert.notEqual(now.fingerprint, dev.fingerprint256);

      const push = (...more: string[]) =>
        mpush(['push', '--gateway', `127.0.0.1:${gatewayPort}`, '--user', 'cli-user', ...more]);
      const tls = push('--content', 'from the cli over tls', '--tls-ca', pki.ca.certFile);
      assert.equal(await tls.exited, 0, tls.out());
      assert.match(tls.out(), /"result": "success"/);
      await waitFor(() => d.pushes.length === 1, GUARD, 'the push');
      assert.equal(d.pushes[0]!.content.toString(), 'from the cli over tls');
      assert.equal(dropped, false);

      // Without --tls the CLI speaks plain TCP to a TLS gateway: no success.
      const plain = push('--content', 'x');
      assert.equal(await plain.exited, 3, plain.out());
    } finally {
      await d.client.close();
    }
  });
});
