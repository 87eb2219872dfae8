import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { webhookBackoffMs } from '../../src/api/webhooks.js';
import type { Config, DeepPartial } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked field by field
type Json = any;

const SECRET = 'whsec-test';

interface Hit {
  headers: IncomingHttpHeaders;
  raw: Buffer;
  event: Json;
  /** The client closed the request before an answer (a hung request cut by webhooks.timeoutMs). */
  cut: boolean;
  answered: number | undefined;
  /** The client's port: one port for many requests is one kept-alive connection. */
  remotePort: number | undefined;
}

/** What the receiver answers its n-th request (0-based): a status, or 'hang' (never answers). */
type Answer = (n: number, hit: Hit) => number | 'hang';

/** A real HTTP listener on port 0 recording every webhook request. */
class Receiver {
  readonly hits: Hit[] = [];
  private readonly held: ServerResponse[] = [];
  constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(answer: Answer = () => 200): Promise<Receiver> {
    let r: Receiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const hit: Hit = {
          headers: req.headers,
          raw,
          event: JSON.parse(raw.toString()),
          cut: false,
          answered: undefined,
          remotePort: req.socket.remotePort,
        };
        const n = r!.hits.length;
        r!.hits.push(hit);
        const a = answer(n, hit);
        if (a === 'hang') {
          r!.held.push(res);
          res.on('close', () => {
            hit.cut = true;
          });
          return;
        }
        hit.answered = a;
        res.writeHead(a, { 'content-type': 'text/plain' }).end(a < 300 ? 'ok' : 'no');
      });
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
    const port = (server.address() as { port: number }).port;
    r = new Receiver(server, `http://127.0.0.1:${port}/hooks`);
    return r;
  }

  of(type: string, pred: (data: Json) => boolean = () => true): Hit[] {
    return this.hits.filter((h) => h.event.type === type && pred(h.event.data));
  }

  byId(id: string): Hit[] {
    return this.hits.filter((h) => h.event.id === id);
  }

  async until(type: string, pred: (data: Json) => boolean = () => true, what = type): Promise<Hit> {
    await waitFor(() => this.of(type, pred).length > 0, 5000, what);
    return this.of(type, pred)[0]!;
  }

  async close(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((res) => this.server.close(() => res()));
  }
}

/** The receiver's check: the header is sha256=<hex HMAC-SHA256 of the exact body>. */
function assertSigned(h: Hit): void {
  const want = `sha256=${createHmac('sha256', SECRET).update(h.raw).digest('hex')}`;
  assert.equal(h.headers['x-mpush-signature'], want, 'valid signature');
  assert.equal(h.headers['x-mpush-event-id'], h.event.id, 'event id header');
  assert.equal(h.headers['x-mpush-event'], h.event.type, 'event type header');
  assert.equal(h.headers['content-type'], 'application/json');
}

async function push(n: TestNode, body: unknown): Promise<Json> {
  const res = await fetch(`http://127.0.0.1:${n.httpPort}/api/push`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as Json).results;
}

function webhookNode(
  urls: string,
  webhooks: DeepPartial<Config['webhooks']> = {},
  lines?: string[],
): Promise<TestNode> {
  const log = createLogger('debug', 'test', (l) => lines?.push(l));
  return startTestNode(
    { webhooks: { urls, secret: SECRET, retryMinMs: 10, retryMaxMs: 40, ...webhooks } },
    {},
    log,
  );
}

const stats = (n: TestNode) => n.node.stats().webhooks!;

describe('webhooks: events', () => {
  let a: Receiver;
  let b: Receiver;
  let n: TestNode;
  const devices: TestDevice[] = [];
  const device = async (userId: string, osName = 'android') => {
    const d = await connectDevice(n.tcpPort, userId, { osName });
    devices.push(d);
    return d;
  };
  before(async () => {
    a = await Receiver.start();
    b = await Receiver.start();
    n = await webhookNode(`${a.url},${b.url}`);
  });
  after(async () => {
    await closeAll(devices);
    await n.stop();
    await Promise.all([a.close(), b.close()]);
  });

  it('user.online and user.offline reach every URL, signed, with device type, node and reason', async () => {
    const d = await device('wu1');
    const on = await a.until('user.online', (x) => x.userId === 'wu1');
    const onB = await b.until('user.online', (x) => x.userId === 'wu1');
    assertSigned(on);
    assertSigned(onB);
    assert.equal(onB.event.id, on.event.id, 'one event, the same id at every URL');
    assert.match(on.event.id, /^[0-9a-f-]{36}$/);
    assert.ok(Number.isFinite(Date.parse(on.event.time)), 'time');
    assert.equal(on.event.data.clientType, 1);
    assert.equal(on.event.data.clientTypeName, 'mobile');
    assert.equal(on.event.data.node, n.node.id);
    assert.equal(on.event.data.osName, 'android');
    await d.client.close();
    const off = await a.until('user.offline', (x) => x.userId === 'wu1');
    assertSigned(off);
    assert.notEqual(off.event.id, on.event.id, 'each event its own id');
    assert.deepEqual(
      [off.event.data.clientTypeName, off.event.data.node, off.event.data.reason],
      ['mobile', n.node.id, 'remote-closed'],
    );
  });

  it('user.offline names the reason: unbind, kicked', async () => {
    const u = await device('wu2', 'windows');
    await u.client.unbindUser();
    const unbound = await a.until('user.offline', (x) => x.userId === 'wu2');
    assert.deepEqual([unbound.event.data.reason, unbound.event.data.clientTypeName], ['unbind', 'pc']);
    await device('wu3');
    await device('wu3');
    const kicked = await a.until('user.offline', (x) => x.userId === 'wu3');
    assert.equal(kicked.event.data.reason, 'kicked');
  });

  it('a store push to an offline user: message.stored, then delivered and acked when it binds and acks', async () => {
    const [r] = await push(n, {
      userId: 'wm1',
      msgId: 'wm1-a',
      content: 'x',
      store: true,
      ackModel: 'BIZ_ACK',
    });
    assert.deepEqual([r.result, r.stored], ['offline', true]);
    const stored = await a.until('message.stored', (x) => x.messageId === 'wm1-a');
    assertSigned(stored);
    assert.deepEqual(
      [stored.event.data.userId, stored.event.data.clientType, stored.event.data.node],
      ['wm1', null, n.node.id],
    );
    const d = await device('wm1');
    const delivered = await a.until('message.delivered', (x) => x.messageId === 'wm1-a');
    assert.deepEqual([delivered.event.data.userId, delivered.event.data.clientTypeName], ['wm1', 'mobile']);
    assert.equal(a.of('message.acked', (x) => x.messageId === 'wm1-a').length, 0, 'not acked before the ack');
    await waitFor(() => d.pushes.length === 1, 3000, 'the replay');
    d.client.ack(d.pushes[0]!.sessionId);
    const acked = await a.until('message.acked', (x) => x.messageId === 'wm1-a');
    assertSigned(acked);
    assert.equal(acked.event.data.clientTypeName, 'mobile');
    const forIt = a.hits.filter((h) => h.event.data.messageId === 'wm1-a');
    assert.deepEqual(
      forIt.map((h) => h.event.type),
      ['message.stored', 'message.delivered', 'message.acked'],
    );
    assert.equal(new Set(forIt.map((h) => h.event.id)).size, 3, 'unique event ids');
  });

  it('a store push written live to an online device: message.delivered and message.acked', async () => {
    await device('wm2');
    const [r] = await push(n, {
      userId: 'wm2',
      msgId: 'wm2-a',
      content: 'x',
      store: true,
      ackModel: 'AUTO_ACK',
    });
    assert.equal(r.result, 'success');
    await a.until('message.acked', (x) => x.messageId === 'wm2-a');
    assert.equal(a.of('message.delivered', (x) => x.messageId === 'wm2-a').length, 1);
    assert.equal(a.of('message.stored', (x) => x.messageId === 'wm2-a').length, 0, 'never stored');
  });

  it('ttl expiry: message.expired, never delivered', async () => {
    await push(n, { userId: 'wm3', msgId: 'wm3-a', content: 'stale', store: true, ttl: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    await device('wm3');
    const expired = await a.until('message.expired', (x) => x.messageId === 'wm3-a');
    assertSigned(expired);
    assert.equal(expired.event.data.userId, 'wm3');
    assert.equal(a.of('message.delivered', (x) => x.messageId === 'wm3-a').length, 0);
  });
});

describe('webhooks: message.dropped when the per-user cap pushes a message out', () => {
  it('the oldest of a full inbox goes with message.dropped, signed; the newer ones stay stored', async () => {
    const r = await Receiver.start();
    const n = await startTestNode({
      webhooks: { urls: r.url, secret: SECRET },
      inbox: { maxMessagesPerUser: 2 },
    });
    try {
      for (const id of ['wd-1', 'wd-2', 'wd-3'])
        await push(n, { userId: 'wd', msgId: id, content: id, store: true });
      const dropped = await r.until('message.dropped', (x) => x.messageId === 'wd-1');
      assertSigned(dropped);
      assert.deepEqual([dropped.event.data.userId, dropped.event.data.clientType], ['wd', null]);
      assert.equal(r.of('message.dropped').length, 1, 'only the oldest');
      assert.equal(r.of('message.stored').length, 3);
    } finally {
      await n.stop();
      await r.close();
    }
  });
});

describe('webhooks: none configured', () => {
  it('no URLs: no webhooks at all, and /api/stats says null', async () => {
    const n = await startTestNode();
    try {
      assert.equal(n.node.webhooks, undefined);
      const res = await fetch(`http://127.0.0.1:${n.httpPort}/api/stats`);
      assert.equal(((await res.json()) as Json).webhooks, null);
    } finally {
      await n.stop();
    }
  });
});

describe('webhooks: a receiver answering 500 gets retries, then success', () => {
  let r: Receiver;
  let n: TestNode;
  const lines: string[] = [];
  before(async () => {
    r = await Receiver.start((i) => (i < 2 ? 500 : 200));
    n = await webhookNode(r.url, { maxAttempts: 5 }, lines);
  });
  after(async () => {
    await n.stop();
    await r.close();
  });

  it('the same event (id and body) is retried until a 2xx; counted; warned once, recovery logged once', async () => {
    await push(n, { userId: 'wr1', msgId: 'wr1-a', content: 'x', store: true });
    await waitFor(() => stats(n).sent === 1, 5000, 'the delivery');
    const hits = r.hits;
    assert.deepEqual(
      hits.map((h) => h.answered),
      [500, 500, 200],
    );
    assert.equal(new Set(hits.map((h) => h.headers['x-mpush-event-id'])).size, 1, 'same event id each time');
    assert.equal(new Set(hits.map((h) => h.raw.toString())).size, 1, 'same body each time');
    for (const h of hits) assertSigned(h);
    assert.equal(new Set(hits.map((h) => h.remotePort)).size, 1, 'one kept-alive connection');
    const s = stats(n);
    assert.deepEqual([s.retried, s.failed, s.queued, s.inFlight], [2, 0, 0, 0]);
    const api = (await (await fetch(`http://127.0.0.1:${n.httpPort}/api/stats`)).json()) as Json;
    assert.deepEqual(
      [api.webhooks.urls, api.webhooks.sent, api.webhooks.retried, api.webhooks.dropped],
      [1, 1, 2, 0],
      'GET /api/stats, under webhooks',
    );
    assert.equal(lines.filter((l) => l.includes('webhook receiver failing')).length, 1);
    assert.equal(lines.filter((l) => l.includes('webhook receiver recovered')).length, 1);
  });
});

describe('webhooks.maxAttempts', () => {
  let r: Receiver;
  let n: TestNode;
  const lines: string[] = [];
  before(async () => {
    r = await Receiver.start(() => 500);
    n = await webhookNode(r.url, { maxAttempts: 3 }, lines);
  });
  after(async () => {
    await n.stop();
    await r.close();
  });

  it('past maxAttempts the event is dropped and counted; the failing receiver is warned about once', async () => {
    await push(n, { userId: 'wa1', msgId: 'wa1-a', content: 'x', store: true });
    await waitFor(() => stats(n).failed === 1, 5000, 'the first event given up');
    assert.equal(r.hits.length, 3, 'three attempts, no more');
    await push(n, { userId: 'wa2', msgId: 'wa2-a', content: 'x', store: true });
    await waitFor(() => stats(n).failed === 2, 5000, 'the second event given up');
    assert.equal(r.hits.length, 6);
    const s = stats(n);
    assert.deepEqual([s.sent, s.retried, s.queued], [0, 4, 0]);
    assert.equal(lines.filter((l) => l.includes('webhook receiver failing')).length, 1, 'not per attempt');
  });
});

describe('webhooks.queueSize', () => {
  let r: Receiver;
  let n: TestNode;
  const lines: string[] = [];
  before(async () => {
    r = await Receiver.start(() => 'hang');
    n = await webhookNode(
      r.url,
      { queueSize: 2, concurrency: 1, timeoutMs: 60_000, stopTimeoutMs: 0 },
      lines,
    );
  });
  after(async () => {
    await n.stop();
    await r.close();
  });

  it('holds queueSize deliveries (in flight included); the rest are dropped and counted; pushes keep their results', async () => {
    for (let i = 0; i < 5; i++) {
      const [res] = await push(n, { userId: `wq${i}`, content: 'x', store: true });
      assert.deepEqual([res.result, res.stored], ['offline', true], 'the push is not slowed or failed');
    }
    const s = stats(n);
    assert.deepEqual([s.events, s.queued, s.dropped], [2, 2, 3]);
    assert.equal(lines.filter((l) => l.includes('webhook queue full')).length, 1, 'warned once');
    await waitFor(() => r.hits.length === 1, 5000, 'the one in flight');
  });
});

describe('webhooks.concurrency', () => {
  let r: Receiver;
  let n: TestNode;
  before(async () => {
    r = await Receiver.start(() => 'hang');
    n = await webhookNode(r.url, { concurrency: 2, timeoutMs: 60_000, stopTimeoutMs: 0 });
  });
  after(async () => {
    await n.stop();
    await r.close();
  });

  it('at most concurrency requests in flight; the others wait in the queue', async () => {
    for (let i = 0; i < 5; i++) await push(n, { userId: `wc${i}`, content: 'x', store: true });
    const s = stats(n);
    assert.deepEqual([s.inFlight, s.queued, s.dropped], [2, 5, 0]);
    await waitFor(() => r.hits.length === 2, 5000, 'two requests');
  });
});

describe('webhooks.timeoutMs', () => {
  let r: Receiver;
  let n: TestNode;
  before(async () => {
    r = await Receiver.start(() => 'hang');
    n = await webhookNode(r.url, { timeoutMs: 200, maxAttempts: 2 });
  });
  after(async () => {
    await n.stop();
    await r.close();
  });

  it('a receiver that never answers is cut at timeoutMs and retried', async () => {
    await push(n, { userId: 'wt1', content: 'x', store: true });
    await waitFor(() => stats(n).failed === 1, 10_000, 'both attempts cut');
    assert.equal(r.hits.length, 2);
    await waitFor(() => r.hits.every((h) => h.cut), 3000, 'the receiver sees both requests closed');
    assert.equal(stats(n).retried, 1);
  });
});

describe('webhooks.stopTimeoutMs', () => {
  it('on stop, a receiver that never answers is abandoned after stopTimeoutMs (counted); stop is not held', {
    timeout: 20_000,
  }, async () => {
    const r = await Receiver.start(() => 'hang');
    const n = await webhookNode(r.url, { timeoutMs: 600_000, stopTimeoutMs: 100 });
    try {
      await push(n, { userId: 'ws1', content: 'x', store: true });
      await waitFor(() => r.hits.length === 1, 5000, 'the request in flight');
      await n.stop();
      const s = n.node.webhooks!.stats;
      assert.deepEqual([s.abandoned, s.queued, s.sent], [1, 0, 0]);
      await waitFor(() => r.hits[0]!.cut, 3000, 'the request closed by the stop');
    } finally {
      await r.close();
    }
  });

  it("a healthy receiver gets the shutdown's user.offline events before the node stops", async () => {
    const r = await Receiver.start();
    const n = await webhookNode(r.url, { stopTimeoutMs: 5000 });
    try {
      await connectDevice(n.tcpPort, 'ws2');
      await r.until('user.online', (x) => x.userId === 'ws2');
      await n.stop();
      const off = r.of('user.offline', (x) => x.userId === 'ws2');
      assert.equal(off.length, 1);
      assert.equal(off[0]!.event.data.reason, 'shutdown');
      assert.equal(n.node.webhooks!.stats.abandoned, 0);
    } finally {
      await r.close();
    }
  });
});

describe('webhooks: a dead receiver', () => {
  let n: TestNode;
  const devices: TestDevice[] = [];
  before(async () => {
    // A port that was just free: connections to it are refused.
    const r = await Receiver.start();
    await r.close();
    n = await webhookNode(r.url, { maxAttempts: 2 });
  });
  after(async () => {
    await closeAll(devices);
    await n.stop();
  });

  it('pushes keep their normal results; the events fail and are counted', async () => {
    const d = await connectDevice(n.tcpPort, 'wd1');
    devices.push(d);
    const [live] = await push(n, { userId: 'wd1', content: 'live', store: true });
    assert.equal(live.result, 'success');
    const [off] = await push(n, { userId: 'wd-nobody', content: 'later', store: true });
    assert.deepEqual([off.result, off.stored], ['offline', true]);
    await waitFor(() => d.pushes.length === 1, 3000, 'the live push');
    await waitFor(() => stats(n).failed >= 3, 5000, 'online, delivered and stored given up');
    assert.equal(stats(n).sent, 0);
  });
});

describe('webhook backoff', () => {
  it('doubles from retryMinMs, is capped at retryMaxMs, and its upper half is random', () => {
    assert.equal(
      webhookBackoffMs(1, 100, 1000, () => 0),
      50,
    );
    assert.equal(
      webhookBackoffMs(1, 100, 1000, () => 1),
      100,
    );
    assert.equal(
      webhookBackoffMs(2, 100, 1000, () => 1),
      200,
    );
    assert.equal(
      webhookBackoffMs(3, 100, 1000, () => 0),
      200,
    );
    assert.equal(
      webhookBackoffMs(10, 100, 1000, () => 1),
      1000,
      'capped',
    );
    assert.equal(
      webhookBackoffMs(10, 100, 1000, () => 0),
      500,
    );
    assert.equal(
      webhookBackoffMs(80, 100, 1000, () => 1),
      1000,
      'no overflow for a large attempt count',
    );
  });
});
