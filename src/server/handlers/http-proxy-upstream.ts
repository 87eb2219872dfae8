import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  STATUS_CODES,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { formatHeaderLines, type HeaderLine, type HttpResponseMessage } from '../../protocol/index.js';

/**
 * Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus the framing Node redoes
 * itself: never passed from a device to an upstream or back. Names listed in a `Connection`
 * header are hop-by-hop too.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
]);

/** The names a `Connection` header value lists (lower case). */
export function connectionTokens(value: string): string[] {
  return value
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '');
}

/** A response the proxy makes itself (MPush's failure replies), with a short text body saying why. */
export function proxyReply(statusCode: number, why: string): HttpResponseMessage {
  const body = Buffer.from(why, 'utf8');
  return {
    statusCode,
    reasonPhrase: STATUS_CODES[statusCode] ?? '',
    headers: formatHeaderLines([
      ['content-type', 'text/plain; charset=utf-8'],
      ['content-length', String(body.length)],
    ]),
    body,
  };
}

/** What one upstream request is given. */
export interface UpstreamRequest {
  url: URL;
  method: string;
  headers: OutgoingHttpHeaders;
  body: Buffer;
  /** The whole exchange, response body included, must end within this (ms). */
  timeoutMs: number;
  /** A longer response body is refused with 502. */
  maxResponseBytes: number;
}

/**
 * Keep-alive agents, one per upstream origin (scheme, host and port: MPush keys its pool by host
 * only, so a request for another port rode a connection to the first). The origins are those of
 * `httpProxy.upstreams`, made once: their number is bounded by the list, their sockets by
 * `maxSockets`.
 */
export class UpstreamAgents {
  private readonly agents = new Map<string, HttpAgent>();

  /**
   * @param idleMs how long a pooled socket may stay idle (shortened by the upstream's own
   *   `Keep-Alive: timeout=` hint): below the upstream's keep-alive timeout, a request rarely rides a
   *   socket the upstream is closing.
   */
  constructor(bases: Iterable<URL>, maxSockets: number, idleMs: number) {
    for (const url of bases) {
      const key = originKey(url);
      if (this.agents.has(key)) continue;
      const options = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: idleMs };
      this.agents.set(key, url.protocol === 'https:' ? new HttpsAgent(options) : new HttpAgent(options));
    }
  }

  /** The agent of `url`'s origin; undefined for an origin not in the list (never called). */
  get(url: URL): HttpAgent | undefined {
    return this.agents.get(originKey(url));
  }

  /** Closes every pooled socket (node stop). */
  destroy(): void {
    for (const agent of this.agents.values()) agent.destroy();
  }
}

function originKey(url: URL): string {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return `${url.protocol}//${url.hostname}:${port}`;
}

/** Methods that may be sent again when the first try met a pooled socket the upstream had closed. */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'PUT', 'DELETE']);

/**
 * One request to an upstream, settled exactly once with the response to send the device:
 * the upstream's own (hop-by-hop headers dropped, `content-length` the body's), or MPush's failure
 * replies: 504 when the upstream could not be reached (refused, unresolvable, or not connected
 * before the deadline), 408 when it was reached but did not answer in time, 502 for any other
 * failure and for a body over the limit. An idempotent request that finds its pooled socket reset
 * before any answer (the upstream closed it while idle) is sent once more, on a fresh socket.
 */
export class UpstreamCall {
  private req: ClientRequest;
  private readonly timer: NodeJS.Timeout;
  private done = false;
  private connected = false;
  private retried = false;
  /** The response was read to its end: the socket may go back to the pool. */
  private complete = false;

  constructor(
    private readonly r: UpstreamRequest,
    private readonly agent: HttpAgent,
    private readonly settle: (response: HttpResponseMessage) => void,
  ) {
    this.timer = setTimeout(onCallTimeout, r.timeoutMs, this);
    this.req = this.send();
  }

  private send(): ClientRequest {
    const r = this.r;
    const request = r.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(r.url, { method: r.method, headers: r.headers, agent: this.agent });
    req.on('socket', (socket: Socket) => {
      if (!socket.connecting) this.connected = true;
      else socket.once('connect', () => (this.connected = true));
    });
    req.on('response', (res) => {
      if (req === this.req) this.read(res, r.maxResponseBytes);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (req !== this.req || this.done) return;
      if (req.reusedSocket && err.code === 'ECONNRESET' && !this.retried && IDEMPOTENT.has(r.method)) {
        this.retried = true;
        this.req = this.send();
        return;
      }
      this.finish(
        this.connected
          ? proxyReply(502, `upstream failed: ${err.code ?? err.message}`)
          : proxyReply(504, `upstream unreachable: ${err.code ?? err.message}`),
      );
    });
    req.end(r.body.length > 0 ? r.body : undefined);
    return req;
  }

  /** Stops the request without an answer (the device's connection closed). */
  abort(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.req.destroy();
  }

  /** @internal the deadline passed. */
  timedOut(): void {
    this.finish(
      this.connected
        ? proxyReply(408, 'upstream did not answer within the timeout')
        : proxyReply(504, 'upstream not reached within the timeout'),
    );
  }

  private read(res: IncomingMessage, max: number): void {
    const declared = Number(res.headers['content-length']);
    if (declared > max) return this.finish(proxyReply(502, `upstream response over ${max} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) this.finish(proxyReply(502, `upstream response over ${max} bytes`));
      else chunks.push(chunk);
    });
    res.on('end', () => {
      if (this.done) return;
      this.complete = true;
      const body = Buffer.concat(chunks, size);
      this.finish({
        statusCode: res.statusCode ?? 502,
        reasonPhrase: res.statusMessage ?? '',
        headers: formatHeaderLines(responseHeaders(res.rawHeaders, body.length)),
        body,
      });
    });
    // Cut off before its end (reset, or closed early): `end` never comes.
    res.on('close', () => this.finish(proxyReply(502, 'upstream response cut off')));
    res.on('error', () => {}); // an error ends in `close`, above
  }

  private finish(response: HttpResponseMessage): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    // A half-read response is of no use: its socket is not returned to the pool.
    if (!this.complete) this.req.destroy();
    this.settle(response);
  }
}

function onCallTimeout(call: UpstreamCall): void {
  call.timedOut();
}

/** The upstream's headers as the device gets them: hop-by-hop ones dropped, `content-length` the body's. */
function responseHeaders(raw: string[], bodyLength: number): HeaderLine[] {
  const drop = new Set(HOP_BY_HOP);
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') for (const t of connectionTokens(raw[i + 1]!)) drop.add(t);
  }
  const out: HeaderLine[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!drop.has(raw[i]!.toLowerCase())) out.push([raw[i]!, raw[i + 1]!]);
  }
  out.push(['content-length', String(bodyLength)]);
  return out;
}
