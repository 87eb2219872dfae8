import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { type Config, parseWebhookUrls } from '../config/index.js';
import type { Connection } from '../connection/index.js';
import type { Logger } from '../log.js';
import { clientTypeName } from '../protocol/index.js';
import type { InboxEventSink, InboxEventType } from '../push/inbox.js';

export type WebhookEventType =
  | 'user.online'
  | 'user.offline'
  | 'message.stored'
  | 'message.delivered'
  | 'message.acked'
  | 'message.expired'
  | 'message.dropped';

/** The counts of GET /api/stats `webhooks`. A delivery is one event for one URL. */
export interface WebhookStats {
  urls: number;
  /** Events accepted into the queue (once per event, whatever the number of URLs). */
  events: number;
  /** Deliveries a receiver answered 2xx. */
  sent: number;
  /** Attempts after the first (a 5xx, a network error or a timeout before). */
  retried: number;
  /** Deliveries given up after `webhooks.maxAttempts`. */
  failed: number;
  /** Deliveries refused because `webhooks.queueSize` were held. */
  dropped: number;
  /** Deliveries still held when the node stopped (`webhooks.stopTimeoutMs`). */
  abandoned: number;
  /** Deliveries held now: waiting, in flight, or waiting to retry. */
  queued: number;
  inFlight: number;
}

/** Header carrying `sha256=<hex HMAC-SHA256 of the body with webhooks.secret>`. */
export const SIGNATURE_HEADER = 'x-mpush-signature';
/** Header carrying the event id (the same on every attempt: receivers deduplicate by it). */
export const EVENT_ID_HEADER = 'x-mpush-event-id';
export const EVENT_TYPE_HEADER = 'x-mpush-event';

/** The signature header's value for `body`: what a receiver recomputes and compares. */
export function webhookSignature(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * The wait before retry `n` (1 for the first): `minMs·2^(n-1)` capped at `maxMs`, of which the
 * upper half is random (so receivers that failed together are not all retried at once).
 */
export function webhookBackoffMs(n: number, minMs: number, maxMs: number, random = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(n - 1, 30));
  return Math.round(base / 2 + (random() * base) / 2);
}

/** One event, serialized and signed once for every URL. */
interface Payload {
  readonly id: string;
  readonly type: WebhookEventType;
  readonly body: Buffer;
  readonly signature: string;
}

interface Target {
  readonly url: URL;
  /** For the log: no credentials, no query. */
  readonly label: string;
  readonly agent: http.Agent;
  /** Its last attempt failed: warned once, until one succeeds. */
  failing: boolean;
  failedAttempts: number;
}

interface Delivery {
  readonly payload: Payload;
  readonly target: Target;
  /** Attempts made so far. */
  attempts: number;
  timer: NodeJS.Timeout | undefined;
  request: http.ClientRequest | undefined;
}

export interface WebhooksOptions {
  config: Pick<Config, 'webhooks'>;
  log: Logger;
  /** The node's id, known once it listens. */
  nodeId: () => string;
}

/**
 * Webhooks out: each event is POSTed as signed JSON to every `webhooks.urls` receiver, retried
 * with exponential backoff and jitter up to `webhooks.maxAttempts`. The queue is the only buffer
 * and it is bounded (`webhooks.queueSize` deliveries, in flight and backing off included); past
 * it an event is dropped and counted, so a slow or dead receiver costs the push path one
 * counter increment, never memory or time. At most `webhooks.concurrency` requests are in
 * flight, each bounded by `webhooks.timeoutMs`. A failing receiver is warned about once, and
 * its recovery logged once.
 */
export class Webhooks implements InboxEventSink {
  private readonly stat = {
    events: 0,
    sent: 0,
    retried: 0,
    failed: 0,
    dropped: 0,
    abandoned: 0,
  };
  private readonly targets: Target[];
  private readonly cfg: Config['webhooks'];
  /** Deliveries ready to go, FIFO from `head`. */
  private ready: Delivery[] = [];
  private head = 0;
  /** Every delivery held (ready, in flight, backing off): what `queueSize` bounds. */
  private readonly held = new Set<Delivery>();
  private inFlight = 0;
  private overflowing = false;
  private stopped = false;
  private idle: (() => void) | undefined;

  /** The node's webhooks, or undefined when `webhooks.urls` is empty (then nothing is built per event). */
  static fromConfig(opts: WebhooksOptions): Webhooks | undefined {
    const urls = parseWebhookUrls(opts.config.webhooks.urls);
    return urls.length > 0 ? new Webhooks(opts, urls) : undefined;
  }

  private constructor(
    private readonly opts: WebhooksOptions,
    urls: URL[],
  ) {
    this.cfg = opts.config.webhooks;
    this.targets = urls.map((url) => ({
      url,
      label: `${url.origin}${url.pathname}`,
      agent: new (url.protocol === 'https:' ? https.Agent : http.Agent)({
        keepAlive: true,
        maxSockets: this.cfg.concurrency,
      }),
      failing: false,
      failedAttempts: 0,
    }));
  }

  get stats(): WebhookStats {
    return {
      urls: this.targets.length,
      ...this.stat,
      queued: this.held.size,
      inFlight: this.inFlight,
    };
  }

  /** A device bound a user on this node. */
  userOnline(conn: Connection): void {
    if (!this.hasRoom()) return;
    this.emit('user.online', {
      userId: conn.userId,
      clientType: conn.clientType,
      clientTypeName: clientTypeName(conn.clientType),
      deviceId: conn.deviceId,
      osName: conn.osName,
      node: this.opts.nodeId(),
    });
  }

  /** A binding ended: `reason` is `unbind`, `kicked`, or the connection's close reason. */
  userOffline(conn: Connection, userId: string, reason: string): void {
    if (!this.hasRoom()) return;
    this.emit('user.offline', {
      userId,
      clientType: conn.clientType,
      clientTypeName: clientTypeName(conn.clientType),
      deviceId: conn.deviceId,
      node: this.opts.nodeId(),
      reason,
    });
  }

  onInboxEvent(type: InboxEventType, messageId: string, userId: string, clientType: number | null): void {
    if (!this.hasRoom()) return;
    this.emit(`message.${type}`, {
      messageId,
      userId,
      clientType,
      clientTypeName: clientType === null ? null : clientTypeName(clientType),
      node: this.opts.nodeId(),
    });
  }

  /** False (with the drops counted) when the event cannot be queued: then it is not even built. */
  private hasRoom(): boolean {
    const queueSize = this.cfg.queueSize;
    if (!this.stopped && this.held.size < queueSize) return true;
    this.stat.dropped += this.targets.length;
    if (!this.overflowing && !this.stopped) {
      this.overflowing = true;
      this.opts.log.warn('webhook queue full: dropping events (webhooks.queueSize)', { queueSize });
    }
    return false;
  }

  private emit(type: WebhookEventType, data: Record<string, unknown>): void {
    const id = randomUUID();
    const body = Buffer.from(JSON.stringify({ id, type, time: new Date().toISOString(), data }));
    const payload: Payload = { id, type, body, signature: webhookSignature(this.cfg.secret, body) };
    this.stat.events++;
    for (const target of this.targets) {
      if (this.held.size >= this.cfg.queueSize) {
        this.stat.dropped++;
        continue;
      }
      const d: Delivery = { payload, target, attempts: 0, timer: undefined, request: undefined };
      this.held.add(d);
      this.ready.push(d);
    }
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.cfg.concurrency && this.head < this.ready.length) {
      const d = this.ready[this.head]!;
      this.ready[this.head++] = undefined as unknown as Delivery;
      this.attempt(d);
    }
    if (this.head === this.ready.length) {
      this.ready = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.ready.length) {
      this.ready = this.ready.slice(this.head);
      this.head = 0;
    }
  }

  private attempt(d: Delivery): void {
    this.inFlight++;
    d.attempts++;
    const { url, agent } = d.target;
    const { body, id, type, signature } = d.payload;
    let settled = false;
    const done = (err: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      d.request = undefined;
      this.inFlight--;
      if (this.stopped) return; // abandoned by close(): counted there
      if (err === undefined) this.succeeded(d);
      else this.attemptFailed(d, err);
      this.pump();
    };
    const req = (url.protocol === 'https:' ? https : http).request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          'user-agent': 'mpush-ts-webhooks',
          [SIGNATURE_HEADER]: signature,
          [EVENT_ID_HEADER]: id,
          [EVENT_TYPE_HEADER]: type,
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        res.on('error', () => {}); // the request's timer or close settles it
        res.on('end', () => done(status >= 200 && status < 300 ? undefined : `HTTP ${status}`));
        res.on('close', () => done('response cut short'));
        res.resume(); // the body is not read, only drained so the socket can be reused
      },
    );
    d.request = req;
    const timer = setTimeout(() => {
      done(`no answer within webhooks.timeoutMs (${this.cfg.timeoutMs} ms)`);
      req.destroy();
    }, this.cfg.timeoutMs);
    req.on('error', (err) => done(err.message));
    req.end(body);
  }

  private succeeded(d: Delivery): void {
    this.stat.sent++;
    this.release(d);
    const t = d.target;
    if (t.failing) {
      t.failing = false;
      this.opts.log.info('webhook receiver recovered', { url: t.label, failedAttempts: t.failedAttempts });
      t.failedAttempts = 0;
    }
  }

  private attemptFailed(d: Delivery, err: string): void {
    const t = d.target;
    t.failedAttempts++;
    if (!t.failing) {
      t.failing = true;
      this.opts.log.warn('webhook receiver failing; retrying with backoff', { url: t.label, err });
    }
    if (d.attempts >= this.cfg.maxAttempts) {
      this.stat.failed++;
      this.release(d);
      this.opts.log.debug('webhook event dropped after webhooks.maxAttempts', {
        url: t.label,
        id: d.payload.id,
        err,
      });
      return;
    }
    this.stat.retried++;
    d.timer = setTimeout(
      () => {
        d.timer = undefined;
        this.ready.push(d);
        this.pump();
      },
      webhookBackoffMs(d.attempts, this.cfg.retryMinMs, this.cfg.retryMaxMs),
    );
  }

  private release(d: Delivery): void {
    this.held.delete(d);
    if (this.overflowing && this.held.size <= this.cfg.queueSize / 2) this.overflowing = false;
    if (this.held.size === 0) this.idle?.();
  }

  /**
   * Node stop: what is held (the offline events of the shutdown among it) gets
   * `webhooks.stopTimeoutMs` to be delivered; then what is left is abandoned and counted, and
   * later events are refused.
   */
  async close(): Promise<void> {
    if (this.held.size > 0 && this.cfg.stopTimeoutMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.idle = resolve;
        timer = setTimeout(resolve, this.cfg.stopTimeoutMs);
      });
      clearTimeout(timer);
      this.idle = undefined;
    }
    this.stopped = true;
    this.stat.abandoned += this.held.size;
    for (const d of this.held) {
      clearTimeout(d.timer);
      d.request?.destroy();
    }
    this.held.clear();
    this.ready = [];
    this.head = 0;
    for (const t of this.targets) t.agent.destroy();
  }
}
