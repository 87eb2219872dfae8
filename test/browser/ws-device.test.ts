import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { WsDeviceClient } from '../../src/client/device/index.js';
import { Disconnect } from '../../src/protocol/disconnect.js';
import { ClientType } from '../../src/protocol/index.js';
import { makeTestPki, type TestPki } from '../helpers/certs.js';
import { launchChromium } from '../helpers/chromium.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

// The browser device client in a real Chromium: the page imports `mpush-ts/device/browser` (an import
// map points the name at the file package.json's `exports` names, served from dist as ESM, as a
// bundler-free page would) and uses the browser's own WebSocket.

/** dist/test/browser → the repository root. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Hang guard for awaited events; never a timing assertion. */
const WAIT = 15_000;

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, { default: string }>;
};
const ENTRY = `${pkg.name}/device/browser`;
const entryFile = pkg.exports['./device/browser']!.default.replace(/^\.\//, '');

const PAGE = `<!doctype html>
<meta charset="utf-8">
<script type="importmap">${JSON.stringify({ imports: { [ENTRY]: `/${entryFile}` } })}</script>
<script type="module">
  import { WsDeviceClient } from '${ENTRY}';
  window.events = [];
  window.startDevice = (url, deviceId, userId) => {
    const client = new WsDeviceClient({ url, deviceId, userId, reconnect: { initialMs: 20, maxMs: 200 } });
    window.client = client;
    for (const name of ['handshake', 'bind', 'push', 'kick', 'disconnected', 'reconnecting']) {
      client.on(name, (e) => window.events.push({ name, e: JSON.parse(JSON.stringify(e ?? null)) }));
    }
    return client.connect().then(() => 'connected', (err) => 'failed: ' + err);
  };
  window.loaded = true;
</script>`;

/** Serves the page and, under it, the package's dist/src as ES modules; nothing else. */
function staticServer(): Promise<Server> {
  const distSrc = join(ROOT, 'dist', 'src');
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
      return;
    }
    const file = normalize(join(ROOT, path));
    if (!file.startsWith(distSrc) || extname(file) !== '.js' || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

interface PageEvent {
  name: string;
  e: Record<string, unknown> & { disconnect?: { name: string }; willReconnect?: boolean };
}

async function events(page: Page): Promise<PageEvent[]> {
  return page.evaluate(() => (globalThis as unknown as { events: PageEvent[] }).events);
}

/** Waits until the page has seen `count` events called `name`; returns them all. */
async function seen(page: Page, name: string, count = 1): Promise<PageEvent[]> {
  await page.waitForFunction(
    ([n, c]) =>
      (globalThis as unknown as { events: PageEvent[] }).events.filter((x) => x.name === n).length >= c,
    [name, count] as const,
    { timeout: WAIT },
  );
  return (await events(page)).filter((x) => x.name === name);
}

async function pushViaApi(node: TestNode, userId: string, content: string): Promise<{ result: string }[]> {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}/api/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId, content, ackModel: 'AUTO_ACK', timeout: 3000 }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { results: { result: string }[] }).results;
}

describe('WsDeviceClient in Chromium, loaded from the package', () => {
  let browser: Browser;
  let site: Server;
  let page: Page;
  const nodes: TestNode[] = [];
  const others: WsDeviceClient[] = [];
  let pki: TestPki;

  before(async () => {
    pki = await makeTestPki();
    // The test CA (self-signed, made per run) trusted by its key alone: a certificate chaining to
    // any other key still fails, as ignoreHTTPSErrors (which trusts anything) would not show.
    browser = await launchChromium([`--ignore-certificate-errors-spki-list=${spkiHash(pki.ca.cert)}`]);
    site = await staticServer();
  });
  afterEach(async () => {
    await page?.close();
    await Promise.all(others.splice(0).map((c) => c.close()));
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => site?.close(resolve));
    pki?.remove();
  });

  /** A fresh page with the client module loaded; its errors go to `errors`. */
  async function loadPage(errors: string[] = []): Promise<Page> {
    const p = await browser.newPage();
    p.on('pageerror', (e) => errors.push(String(e)));
    await p.goto(`http://127.0.0.1:${(site.address() as AddressInfo).port}/`);
    await p.waitForFunction(() => (globalThis as unknown as { loaded?: boolean }).loaded === true, null, {
      timeout: WAIT,
    });
    return p;
  }

  /** A fresh page with the client module loaded, and a device started on `node` as `userId`. */
  async function device(
    node: TestNode,
    deviceId: string,
    userId: string,
    url = `ws://127.0.0.1:${node.httpPort}/`,
  ): Promise<Page> {
    const errors: string[] = [];
    page = await loadPage(errors);
    const connected = await page.evaluate(
      ([u, d, id]) =>
        (globalThis as unknown as { startDevice: (...a: string[]) => Promise<string> }).startDevice(u, d, id),
      [url, deviceId, userId] as const,
    );
    assert.equal(connected, 'connected', errors.join('\n'));
    await seen(page, 'bind');
    assert.deepEqual(errors, []);
    return page;
  }

  it('binds and receives a push, auto-acked end to end', async () => {
    const node = await startTestNode();
    nodes.push(node);
    const p = await device(node, 'page-1', 'b-user');
    assert.equal(node.node.connections.router.get('b-user', ClientType.WEB)?.deviceId, 'page-1');
    const results = await pushViaApi(node, 'b-user', 'hello from the gateway');
    assert.deepEqual(
      results.map((r) => r.result),
      ['success'],
    );
    const [push] = await seen(p, 'push');
    assert.equal(push!.e.content, 'hello from the gateway');
    assert.equal(push!.e.ackModel, 'auto');
  });

  it('binds and receives a push over WSS (https.port), the certificate chaining to a self-signed CA', async () => {
    const node = await startTestNode({
      // The chain (server certificate, then the CA's): Chromium matches the SPKI list against the
      // certificates the server presents.
      tls: { cert: pki.server.chainFile, key: pki.server.keyFile },
      https: { enabled: true, port: 0 },
    });
    nodes.push(node);
    const p = await device(node, 'page-wss', 'wss-user', `wss://127.0.0.1:${node.node.addresses.httpsPort}/`);
    assert.equal(node.node.connections.router.get('wss-user', ClientType.WEB)?.transport.kind, 'ws');
    assert.deepEqual(
      (await pushViaApi(node, 'wss-user', 'hello over wss')).map((r) => r.result),
      ['success'],
    );
    const [push] = await seen(p, 'push');
    assert.equal(push!.e.content, 'hello over wss');
  });

  it('refuses WSS with a certificate whose CA the browser does not trust', async () => {
    const node = await startTestNode({
      tls: { cert: pki.otherCa.certFile, key: pki.otherCa.keyFile },
      https: { enabled: true, port: 0 },
    });
    nodes.push(node);
    page = await loadPage();
    const url = `wss://127.0.0.1:${node.node.addresses.httpsPort}/`;
    // The client keeps retrying a connection that never opens: what matters is it never binds.
    await page.evaluate(
      ([u]) =>
        void (globalThis as unknown as { startDevice: (...a: string[]) => Promise<string> }).startDevice(
          u,
          'page-x',
          'x-user',
        ),
      [url] as const,
    );
    await seen(page, 'reconnecting');
    assert.equal(node.node.connections.stats.accepted, 0);
  });

  it('is kicked by another web device of its user, and does not reconnect when the connection goes', async () => {
    const node = await startTestNode();
    nodes.push(node);
    const p = await device(node, 'page-2', 'k-user');
    const pageConn = node.node.connections.router.get('k-user', ClientType.WEB)!;
    const other = new WsDeviceClient({
      url: `ws://127.0.0.1:${node.httpPort}/`,
      deviceId: 'node-web',
      userId: 'k-user',
      WebSocket,
    });
    others.push(other);
    await other.connect();
    const [kick] = await seen(p, 'kick');
    assert.deepEqual(kick!.e, { deviceId: 'page-2', userId: 'k-user' });
    // The server keeps a kicked connection (mpush-wire §12); when it goes, the page stays down.
    pageConn.close(Disconnect.SHUTDOWN);
    const [gone] = await seen(p, 'disconnected');
    assert.equal(gone!.e.disconnect?.name, 'kicked');
    assert.equal(gone!.e.willReconnect, false);
    assert.equal(
      await p.evaluate(() => (globalThis as unknown as { client: { state: string } }).client.state),
      'idle',
    );
    assert.equal((await events(p)).filter((x) => x.name === 'reconnecting').length, 0);
    assert.equal(node.node.connections.router.get('k-user', ClientType.WEB)?.deviceId, 'node-web');
  });

  it('reconnects and binds again after the node restarts on the same port', async () => {
    const first = await startTestNode();
    const port = first.httpPort;
    const p = await device(first, 'page-3', 'r-user');
    await first.stop();
    const [gone] = await seen(p, 'disconnected');
    assert.equal(gone!.e.disconnect?.name, 'shutdown');
    assert.equal(gone!.e.willReconnect, true);
    const second = await startTestNode({ http: { port } });
    nodes.push(second);
    await seen(p, 'bind', 2);
    await waitFor(
      () => second.node.connections.router.get('r-user', ClientType.WEB) !== undefined,
      WAIT,
      'the page bound on the new node',
    );
    const results = await pushViaApi(second, 'r-user', 'after the restart');
    assert.deepEqual(
      results.map((r) => r.result),
      ['success'],
    );
    const pushes = await seen(p, 'push');
    assert.equal(pushes.at(-1)!.e.content, 'after the restart');
  });
});

/** base64 SHA-256 of a certificate's SubjectPublicKeyInfo: what Chromium's SPKI list names. */
function spkiHash(pem: string): string {
  const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}
