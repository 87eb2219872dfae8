import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { DeviceClient, type DeviceClientOptions, WsDeviceClient } from '../../src/client/device/index.js';
import { inflate, loadPublicKey } from '../../src/crypto/index.js';
import {
  Command,
  ErrorCode,
  Flags,
  HttpMethod,
  HttpRequestCodec,
  type HttpRequestMessage,
  HttpResponseCodec,
  type HttpResponseMessage,
  type Packet,
} from '../../src/protocol/index.js';
import { freePort } from '../helpers/free-port.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { RawDevice } from '../helpers/raw-device.js';
import { mpushDefaultKeys } from '../helpers/shared.js';
import { waitFor } from '../helpers/wait.js';

const publicKeyText = mpushDefaultKeys().publicKey;
const publicKey = loadPublicKey(publicKeyText);

/** What the upstream saw of one request. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/**
 * A real local upstream: `/echo` answers what it received as JSON, `/status/N` answers N,
 * `/hang` never answers, `/bytes?n=` n random bytes, `/text?n=` n bytes of repetitive text.
 */
class Upstream {
  readonly server: Server;
  readonly seen: Seen[] = [];
  /** Requests to `/hang`; `closed` once the proxy dropped the connection they came on. */
  readonly hanging: Array<{ closed: boolean }> = [];
  port = 0;

  constructor() {
    this.server = createServer((req, res) => this.serve(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', 'http://upstream');
      this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const n = Number(url.searchParams.get('n') ?? 0);
      if (url.pathname.endsWith('/echo')) {
        res.setHeader('x-upstream', 'yes');
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
      } else if (url.pathname.includes('/status/')) {
        const code = Number(url.pathname.split('/').pop());
        res.statusCode = code;
        res.statusMessage = `Custom ${code}`;
        res.end(`status ${code}`);
      } else if (url.pathname.endsWith('/hang')) {
        const h = { closed: false };
        this.hanging.push(h);
        res.on('close', () => (h.closed = true));
      } else if (url.pathname.endsWith('/bytes')) {
        res.end(randomBytes(n));
      } else if (url.pathname.endsWith('/text')) {
        res.end('mpush '.repeat(Math.ceil(n / 6)).slice(0, n));
      } else {
        res.statusCode = 400;
        res.end();
      }
    });
  }
}

/** Sends one HttpRequest from a raw device and reads its answer (decrypted, inflated). */
async function rawRequest(
  d: RawDevice,
  m: Partial<HttpRequestMessage> & { uri: string },
): Promise<{ packet: Packet; response: HttpResponseMessage }> {
  const sessionId = d.send(
    Command.HTTP_PROXY,
    HttpRequestCodec.encode({ method: HttpMethod.GET, headers: '', body: Buffer.alloc(0), ...m }),
  );
  const packet = await d.until(
    () => {
      const i = d.packets.findIndex((p) => p.cmd === Command.HTTP_PROXY && p.sessionId === sessionId);
      return i >= 0 ? d.packets.splice(i, 1)[0] : undefined;
    },
    5000,
    `HTTP_PROXY reply ${sessionId}`,
  );
  let body = d.open(packet);
  if (packet.flags & Flags.COMPRESS) body = inflate(body, 64 * 1024 * 1024);
  return { packet, response: HttpResponseCodec.decode(body) };
}

describe('HTTP proxy through the long connection (mpush-wire §11)', () => {
  const upstream = new Upstream();
  let t: TestNode;
  let downPort: number;
  const clients: Array<DeviceClient | WsDeviceClient> = [];
  const raws: RawDevice[] = [];
  let seq = 0;

  const device = async (userId: string | undefined, opts: Partial<DeviceClientOptions> = {}) => {
    const c = new DeviceClient({
      servers: [{ host: '127.0.0.1', port: t.tcpPort }],
      publicKey: publicKeyText,
      deviceId: `proxy-dev-${++seq}`,
      autoReconnect: false,
      ...(userId ? { userId } : {}),
      ...opts,
    });
    clients.push(c);
    const bound = userId ? new Promise<void>((r) => c.once('bind', () => r())) : Promise.resolve();
    await c.connect();
    await bound;
    return c;
  };

  const raw = async (): Promise<RawDevice> => {
    const d = await RawDevice.connect(t.tcpPort);
    raws.push(d);
    await d.handshake(publicKey);
    return d;
  };

  before(async () => {
    await upstream.start();
    downPort = await freePort();
    t = await startTestNode({
      httpProxy: {
        enabled: true,
        upstreams: `api=http://127.0.0.1:${upstream.port}/base, down=http://127.0.0.1:${downPort}`,
        maxRequestBytes: 4096,
        maxConcurrentPerConnection: 2,
        maxConcurrent: 3,
      },
    });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    for (const d of raws.splice(0)) d.close();
    upstream.seen.length = 0;
  });

  after(async () => {
    await t.stop();
    await upstream.stop();
  });

  it('GET: path and query under the base URL, headers both ways, x-mpush-user, readTimeout not forwarded', async () => {
    const c = await device('alice');
    const res = await c.httpRequest({
      url: 'http://api/echo?x=1',
      headers: { accept: 'application/json', 'X-Custom': 'v1', readTimeout: '3000' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.reason, 'OK');
    assert.equal(res.headers['x-upstream'], 'yes');
    assert.equal(res.headers['content-length'], String(res.body.length));
    assert.equal(res.headers['transfer-encoding'], undefined);
    assert.equal(res.headers.connection, undefined);
    const echo = JSON.parse(res.body.toString()) as Seen;
    assert.equal(echo.method, 'GET');
    assert.equal(echo.url, '/base/echo?x=1');
    assert.equal(echo.headers.accept, 'application/json');
    assert.equal(echo.headers['x-custom'], 'v1');
    assert.equal(echo.headers['x-mpush-user'], 'alice');
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(echo.headers.host, `127.0.0.1:${upstream.port}`);
    assert.equal(echo.headers.readtimeout, undefined);
  });

  it("POST: the body and its headers reach the upstream; x-forwarded-port is the device's port", async () => {
    const d = await raw();
    const payload = JSON.stringify({ hello: 'world', n: 42 });
    const { response } = await rawRequest(d, {
      method: HttpMethod.POST,
      uri: 'http://api/echo',
      headers: 'content-type:application/json\nx-trace:abc\nX-Mpush-User:root\n',
      body: Buffer.from(payload),
    });
    assert.equal(response.statusCode, 200);
    const echo = JSON.parse(response.body.toString()) as Seen;
    assert.equal(echo.method, 'POST');
    assert.equal(echo.body, payload);
    assert.equal(echo.headers['content-type'], 'application/json');
    assert.equal(echo.headers['content-length'], String(Buffer.byteLength(payload)));
    assert.equal(echo.headers['x-trace'], 'abc');
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(echo.headers['x-forwarded-port'], String(d.socket.localPort));
    // Unbound: no user to vouch for, and none the device names.
    assert.equal(echo.headers['x-mpush-user'], undefined);
  });

  it('strips what a device may not set: x-mpush-user, x-forwarded-*, forwarded, host, hop-by-hop', async () => {
    const c = await device('bob');
    const res = await c.httpRequest({
      url: 'http://api/echo',
      headers: {
        'x-mpush-user': 'admin',
        'X-Forwarded-For': '6.6.6.6',
        'x-forwarded-port': '1',
        'x-forwarded-host': 'evil',
        forwarded: 'for=6.6.6.6',
        host: 'evil.example',
        connection: 'x-secret',
        'x-secret': 'hop',
        'proxy-authorization': 'Basic eA==',
      },
    });
    const echo = JSON.parse(res.body.toString()) as Seen;
    assert.equal(echo.headers['x-mpush-user'], 'bob');
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    assert.notEqual(echo.headers['x-forwarded-port'], '1');
    assert.equal(echo.headers['x-forwarded-host'], undefined);
    assert.equal(echo.headers.forwarded, undefined);
    assert.equal(echo.headers.host, `127.0.0.1:${upstream.port}`);
    assert.equal(echo.headers['x-secret'], undefined);
    assert.equal(echo.headers['proxy-authorization'], undefined);
  });

  it('passes 404 and 500 through with their reason and body', async () => {
    const c = await device(undefined);
    for (const code of [404, 500]) {
      const res = await c.httpRequest({ url: `http://api/status/${code}` });
      assert.equal(res.status, code);
      assert.equal(res.reason, `Custom ${code}`);
      assert.equal(res.body.toString(), `status ${code}`);
    }
  });

  it('counts its answers by status class in GET /metrics, refusals included', async () => {
    const answered = async (): Promise<Record<string, number>> => {
      const text = await (await fetch(`http://127.0.0.1:${t.httpPort}/metrics`)).text();
      const out: Record<string, number> = {};
      for (const m of text.matchAll(/^mpush_http_proxy_requests_total\{status="(\w+)"\} (\d+)$/gm)) {
        out[m[1]!] = Number(m[2]);
      }
      return out;
    };
    const before = await answered();
    const c = await device(undefined);
    assert.equal((await c.httpRequest({ url: 'http://api/echo' })).status, 200);
    assert.equal((await c.httpRequest({ url: 'http://api/status/404' })).status, 404);
    assert.equal((await c.httpRequest({ url: 'http://evil.example/x' })).status, 403);
    assert.equal((await c.httpRequest({ url: 'http://api/status/500' })).status, 500);
    const now = await answered();
    assert.deepEqual(Object.fromEntries(Object.keys(now).map((k) => [k, now[k]! - (before[k] ?? 0)])), {
      '2xx': 1,
      '3xx': 0,
      '4xx': 2,
      '5xx': 1,
      other: 0,
    });
    assert.equal(t.node.stats().httpProxy?.inFlight, 0);
  });

  it('an upstream that does not answer within readTimeout → 408', async () => {
    const c = await device(undefined);
    const res = await c.httpRequest({ url: 'http://api/hang', headers: { readTimeout: '200' } });
    assert.equal(res.status, 408);
    assert.equal(upstream.hanging.length > 0, true);
  });

  it('an upstream that is down → 504', async () => {
    const c = await device(undefined);
    const res = await c.httpRequest({ url: 'http://down/anything' });
    assert.equal(res.status, 504);
  });

  it('refuses (403) a host the list does not name, also a private address, and calls nothing', async () => {
    const c = await device(undefined);
    for (const url of [
      'http://evil.example/x',
      `http://127.0.0.1:${upstream.port}/echo`,
      'http://10.0.0.1/echo',
      'http://[::1]/echo',
    ]) {
      const res = await c.httpRequest({ url });
      assert.equal(res.status, 403, url);
    }
    assert.equal(upstream.seen.length, 0);
  });

  it('keeps a path that looks like a host on the upstream (no resolution against the base)', async () => {
    const c = await device(undefined);
    const res = await c.httpRequest({ url: 'http://api//evil.example/echo' });
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.body.toString()) as Seen).url, '/base//evil.example/echo');
  });

  it("stays under the base path: '..' is resolved by the URL, an encoded slash is refused (400)", async () => {
    const c = await device(undefined);
    const dots = await c.httpRequest({ url: 'http://api/x/../%2e%2e/echo' });
    assert.equal(dots.status, 200);
    assert.equal((JSON.parse(dots.body.toString()) as Seen).url, '/base/echo');
    for (const url of ['http://api/..%2F..%2Fecho', 'http://api/..%5cecho', 'http://api/a%2fb']) {
      const res = await c.httpRequest({ url });
      assert.equal(res.status, 400, url);
    }
    assert.equal(upstream.seen.length, 1, 'only the first request reached the upstream');
  });

  it('a bad or empty URL: 502 and 400, as MPush', async () => {
    const d = await raw();
    assert.equal((await rawRequest(d, { uri: 'not a url' })).response.statusCode, 502);
    assert.equal((await rawRequest(d, { uri: 'ftp://api/x' })).response.statusCode, 502);
    assert.equal((await rawRequest(d, { uri: '' })).response.statusCode, 400);
  });

  it('a response over httpProxy.maxResponseBytes (6 MB) → 502', async () => {
    const c = await device(undefined);
    const res = await c.httpRequest({ url: `http://api/bytes?n=${6 * 1000 * 1000}` });
    assert.equal(res.status, 502);
  });

  it('a large response travels compressed (COMPRESS | CRYPTO) and opens to the same bytes', async () => {
    const d = await raw();
    const n = 200 * 1024;
    const { packet, response } = await rawRequest(d, { uri: `http://api/text?n=${n}` });
    assert.equal(packet.flags & (Flags.COMPRESS | Flags.CRYPTO), Flags.COMPRESS | Flags.CRYPTO);
    assert.ok(packet.body.length < n / 10);
    assert.equal(response.statusCode, 200);
    assert.equal(response.body.length, n);
    assert.equal(response.body.toString(), 'mpush '.repeat(Math.ceil(n / 6)).slice(0, n));
  });

  it('a request body over httpProxy.maxRequestBytes → 413, not sent', async () => {
    const c = await device(undefined);
    const res = await c.httpRequest({ url: 'http://api/echo', method: 'POST', body: randomBytes(5000) });
    assert.equal(res.status, 413);
    assert.equal(upstream.seen.length, 0);
  });

  it('caps requests in flight per connection (429), and a closed connection drops its upstream requests', async () => {
    const c = await device(undefined);
    const slow = [1, 2].map(() =>
      c.httpRequest({ url: 'http://api/hang', timeoutMs: 30_000 }).catch((e: Error) => e),
    );
    const third = await c.httpRequest({ url: 'http://api/echo' });
    assert.equal(third.status, 429);
    // Another connection is not limited by this one's requests.
    const other = await device(undefined);
    assert.equal((await other.httpRequest({ url: 'http://api/echo' })).status, 200);
    await waitFor(() => upstream.hanging.length >= 2, 5000, 'both hanging requests at the upstream');
    const hung = upstream.hanging.slice(-2);
    await c.close();
    assert.equal(
      hung.some((h) => h.closed),
      false,
    );
    await waitFor(() => hung.every((h) => h.closed), 5000, 'upstream requests aborted');
    for (const r of await Promise.all(slow)) assert.ok(r instanceof Error);
  });

  it('caps requests in flight on the node (503), freed as they end', async () => {
    const a = await device(undefined);
    const b = await device(undefined);
    const before = upstream.hanging.length;
    const hang = (c: DeviceClient) =>
      c.httpRequest({ url: 'http://api/hang', timeoutMs: 30_000 }).catch((e: Error) => e);
    const slow = [hang(a), hang(a)];
    await waitFor(() => upstream.hanging.length === before + 2, 5000, "a's requests at the upstream");
    slow.push(hang(b));
    await waitFor(() => upstream.hanging.length === before + 3, 5000, "b's request at the upstream");
    assert.equal((await b.httpRequest({ url: 'http://api/echo' })).status, 503);
    await a.close();
    const ofA = upstream.hanging.slice(before, before + 2);
    await waitFor(() => ofA.every((h) => h.closed), 5000, "a's requests dropped");
    assert.equal((await b.httpRequest({ url: 'http://api/echo' })).status, 200);
    await b.close();
    for (const r of await Promise.all(slow)) assert.ok(r instanceof Error);
  });

  it('a bad HttpRequest body closes only that connection', async () => {
    const bad = await raw();
    const good = await device(undefined);
    // method byte, then a string that claims 0x7000 bytes and has 2.
    bad.send(Command.HTTP_PROXY, Buffer.from([0, 0x70, 0x00, 0x61, 0x62]));
    assert.equal(bad.error(await bad.next(Command.ERROR)).code, ErrorCode.DISPATCH_ERROR);
    await bad.waitClosed();
    assert.equal((await good.httpRequest({ url: 'http://api/echo' })).status, 200);
  });

  it('refuses HTTP_PROXY before a handshake, as every command that acts for a device', async () => {
    const d = await RawDevice.connect(t.tcpPort);
    raws.push(d);
    d.send(
      Command.HTTP_PROXY,
      HttpRequestCodec.encode({ method: 0, uri: 'http://api/echo', headers: '', body: Buffer.alloc(0) }),
    );
    assert.equal(d.error(await d.next(Command.ERROR)).reason, 'not handshake');
    await d.waitClosed();
    assert.equal(upstream.seen.length, 0);
  });

  it('WebSocket JSON devices use it too (text bodies)', async () => {
    const c = new WsDeviceClient({
      url: `ws://127.0.0.1:${t.httpPort}/`,
      deviceId: `proxy-ws-${++seq}`,
      userId: 'carol',
      WebSocket,
      autoReconnect: false,
    });
    clients.push(c);
    const bound = new Promise<void>((r) => c.once('bind', () => r()));
    await c.connect();
    await bound;
    const res = await c.httpRequest({ url: 'http://api/echo', method: 'PUT', body: 'héllo' });
    assert.equal(res.status, 200);
    const echo = JSON.parse(res.body) as Seen;
    assert.equal(echo.method, 'PUT');
    assert.equal(echo.body, 'héllo');
    assert.equal(echo.headers['x-mpush-user'], 'carol');
  });
});

describe('HTTP proxy settings', () => {
  const upstream = new Upstream();
  before(() => upstream.start());
  after(() => upstream.stop());

  it('is off by default: 403 for every request, the connection stays, nothing is called', async () => {
    const t = await startTestNode({ httpProxy: { upstreams: `api=http://127.0.0.1:${upstream.port}` } });
    try {
      const d = await RawDevice.connect(t.tcpPort);
      try {
        await d.handshake(publicKey);
        for (let i = 0; i < 2; i++) {
          const { response } = await rawRequest(d, { uri: 'http://api/echo' });
          assert.equal(response.statusCode, 403);
          assert.match(response.body.toString(), /disabled/);
        }
        assert.equal(d.closed, false);
        assert.equal(upstream.seen.length, 0);
      } finally {
        d.close();
      }
    } finally {
      await t.stop();
    }
  });

  it('httpProxy.requireBind refuses (403) an unbound connection and serves it once bound', async () => {
    const t = await startTestNode({
      httpProxy: { enabled: true, requireBind: true, upstreams: `api=http://127.0.0.1:${upstream.port}` },
    });
    try {
      const d = await RawDevice.connect(t.tcpPort);
      try {
        await d.handshake(publicKey);
        assert.equal((await rawRequest(d, { uri: 'http://api/echo' })).response.statusCode, 403);
        assert.ok((await d.bind('dave')).ok);
        const { response } = await rawRequest(d, { uri: 'http://api/echo' });
        assert.equal(response.statusCode, 200);
        assert.equal((JSON.parse(response.body.toString()) as Seen).headers['x-mpush-user'], 'dave');
      } finally {
        d.close();
      }
    } finally {
      await t.stop();
    }
  });
});

describe('HTTP proxy keep-alive pool', () => {
  // An upstream that answers the first request of each connection (keep-alive) and resets the
  // connection at the second: what a pooled socket the upstream closed while idle looks like.
  const sockets: Socket[] = [];
  let requests = 0;
  const flaky = createTcpServer((socket) => {
    sockets.push(socket);
    let served = 0;
    socket.on('data', () => {
      requests++;
      if (served++ > 0) return void socket.destroy();
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok');
    });
    socket.on('error', () => {});
  });
  let t: TestNode;

  before(async () => {
    await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
    t = await startTestNode({
      httpProxy: {
        enabled: true,
        upstreams: `flaky=http://127.0.0.1:${(flaky.address() as AddressInfo).port}`,
      },
    });
  });

  after(async () => {
    await t.stop();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => flaky.close(() => r()));
  });

  it('reuses the socket, and sends an idempotent request again when the reused socket was reset', async () => {
    const d = await RawDevice.connect(t.tcpPort);
    try {
      await d.handshake(publicKey);
      assert.equal((await rawRequest(d, { uri: 'http://flaky/a' })).response.statusCode, 200);
      const retried = await rawRequest(d, { uri: 'http://flaky/b' });
      assert.equal(retried.response.statusCode, 200);
      assert.equal(retried.response.body.toString(), 'ok');
      // a, then b on a's pooled socket (reset), then b again on a new one.
      assert.deepEqual([requests, sockets.length], [3, 2]);
      // POST is not sent twice: the upstream may have acted on it.
      const post = await rawRequest(d, {
        uri: 'http://flaky/c',
        method: HttpMethod.POST,
        body: Buffer.from('x'),
      });
      assert.equal(post.response.statusCode, 502);
      assert.deepEqual([requests, sockets.length], [4, 2]);
    } finally {
      d.close();
    }
  });
});

describe('HTTP proxy pool limits', () => {
  // An upstream that answers `/slow` after 150 ms and keeps idle connections open for a minute, so
  // only the proxy's own pool decides how many sockets there are and when an idle one closes.
  let live = 0;
  let most = 0;
  let opened = 0;
  const server = createServer((_req, res) => setTimeout(() => res.end('ok'), 150));
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    opened++;
    most = Math.max(most, ++live);
    s.on('close', () => live--);
  });

  before(() => new Promise<void>((r) => server.listen(0, '127.0.0.1', r)));
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });

  const nodeWith = (pool: { maxSocketsPerUpstream?: number; idleSocketMs?: number }) =>
    startTestNode({
      httpProxy: {
        enabled: true,
        upstreams: `slow=http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        ...pool,
      },
    });

  it('httpProxy.maxSocketsPerUpstream: requests past it wait for a pooled socket instead of opening more', async () => {
    [live, most, opened] = [0, 0, 0];
    const t = await nodeWith({ maxSocketsPerUpstream: 1 });
    const d = await RawDevice.connect(t.tcpPort);
    try {
      await d.handshake(publicKey);
      const all = await Promise.all([1, 2, 3].map(() => rawRequest(d, { uri: 'http://slow/slow' })));
      assert.deepEqual(
        all.map((r) => r.response.statusCode),
        [200, 200, 200],
      );
      assert.deepEqual([most, opened], [1, 1], 'one socket, reused in turn');
    } finally {
      d.close();
      await t.stop();
    }
  });

  it('httpProxy.idleSocketMs: a pooled socket idle that long is closed by the proxy', async () => {
    [live, most, opened] = [0, 0, 0];
    const t = await nodeWith({ idleSocketMs: 200 });
    const d = await RawDevice.connect(t.tcpPort);
    try {
      await d.handshake(publicKey);
      assert.equal((await rawRequest(d, { uri: 'http://slow/slow' })).response.statusCode, 200);
      assert.equal(opened, 1);
      // The upstream would keep it a minute: only the proxy's idle deadline closes it.
      await waitFor(() => live === 0, 3000, 'the idle pooled socket to close');
    } finally {
      d.close();
      await t.stop();
    }
  });
});
