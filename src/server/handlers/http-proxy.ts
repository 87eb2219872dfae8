import { type OutgoingHttpHeaders, validateHeaderName, validateHeaderValue } from 'node:http';
import { type Config, parseProxyUpstreams } from '../../config/index.js';
import type { Connection } from '../../connection/index.js';
import type { Logger } from '../../log.js';
import {
  Command,
  HttpMethod,
  type HttpRequestMessage,
  type HttpResponseMessage,
  parseHeaderLines,
} from '../../protocol/index.js';
import {
  connectionTokens,
  HOP_BY_HOP,
  proxyReply,
  UpstreamAgents,
  UpstreamCall,
} from './http-proxy-upstream.js';

/** HttpRequest's method byte (mpush-wire §3). */
/** HttpRequest's method byte → its name (mpush-wire §3). */
const METHODS: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(HttpMethod).map(([name, code]) => [code, name]),
);

/**
 * Request headers a device may not set: hop-by-hop ones, `host` (the upstream's own is sent), `expect`
 * (the body is sent whole), and those the proxy vouches for (`x-mpush-user`, the forwarding headers:
 * also every `x-forwarded-*`), so a device cannot spoof them.
 */
const DEVICE_MAY_NOT_SET: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP,
  'host',
  'expect',
  'forwarded',
  'x-real-ip',
  'x-mpush-user',
]);

/** MPush's Java SDK names the device's wish for an upstream read timeout in this header (ms); not forwarded. */
const READ_TIMEOUT_HEADER = 'readtimeout';

const DISABLED = proxyReply(403, 'the HTTP proxy is disabled (httpProxy.enabled)');

/** Answers HTTP_PROXY request `sessionId` with `response` (encrypted, compressed over the threshold). */
function reply(conn: Connection, sessionId: number, response: HttpResponseMessage): void {
  conn.send({ cmd: Command.HTTP_PROXY, sessionId, body: response });
}

/**
 * HTTP_PROXY (mpush-wire §11): the device's HTTP request, performed by the proxy and answered on the
 * same connection under the same sessionId. With the proxy off, every request is answered 403 and the
 * connection stays (MPush, with no handler, would answer ERROR 101 and close: a device would then
 * reconnect into the same refusal). The dispatcher has checked the handshake.
 */
export function handleHttpProxy(
  proxy: HttpProxy | undefined,
  conn: Connection,
  sessionId: number,
  m: HttpRequestMessage,
): void {
  if (proxy === undefined) return reply(conn, sessionId, DISABLED);
  proxy.handle(conn, sessionId, m);
}

/** What the proxy reads of the configuration. */
export type HttpProxyConfig = Config['httpProxy'];

/**
 * The HTTP proxy through the long connection: an allow-list of upstreams (`httpProxy.upstreams`,
 * host name → base URL; nothing else is ever called), request and response size limits, a
 * per-request deadline, caps on requests in flight per connection (429) and per node (503), and
 * one keep-alive agent per upstream origin. MPush's behaviour is kept where devices see it: the
 * `readTimeout` header, the `x-forwarded-for` / `x-forwarded-port` headers, and its failure codes
 * (504 unreachable, 502 bad URL or failed upstream or response too large, 408 timeout).
 */
export class HttpProxy {
  private readonly settings: HttpProxyConfig;
  private readonly log: Logger;
  private readonly upstreams: Map<string, URL>;
  private readonly agents: UpstreamAgents;
  private readonly inflight = new Map<Connection, Set<UpstreamCall>>();
  /** Requests in flight over all connections. */
  private total = 0;
  /** Requests answered, by status class (refusals included): /api/stats and /metrics. */
  readonly stats = { answered: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, other: 0 } };

  constructor(settings: HttpProxyConfig, log: Logger) {
    this.settings = settings;
    this.log = log;
    this.upstreams = parseProxyUpstreams(settings.upstreams);
    this.agents = new UpstreamAgents(
      this.upstreams.values(),
      settings.maxSocketsPerUpstream,
      settings.idleSocketMs,
    );
  }

  /** Performs one request and answers it; every refusal is an HttpResponse, the connection stays. */
  handle(conn: Connection, sessionId: number, m: HttpRequestMessage): void {
    const s = this.settings;
    if (s.requireBind && conn.userId === '') {
      return this.answer(conn, sessionId, proxyReply(403, 'bind a user before using the HTTP proxy'));
    }
    const method = METHODS[m.method];
    if (method === undefined)
      return this.answer(conn, sessionId, proxyReply(400, `unknown method ${m.method}`));
    if (m.body.length > s.maxRequestBytes) {
      return this.answer(conn, sessionId, proxyReply(413, `request body over ${s.maxRequestBytes} bytes`));
    }
    const target = this.resolve(m.uri);
    if (!(target instanceof URL)) return this.answer(conn, sessionId, target);
    const prepared = this.requestHeaders(conn, m.headers, m.body.length);
    if (!('timeoutMs' in prepared)) return this.answer(conn, sessionId, prepared);
    let calls = this.inflight.get(conn);
    if (calls !== undefined && calls.size >= s.maxConcurrentPerConnection) {
      return this.answer(
        conn,
        sessionId,
        proxyReply(429, `over ${s.maxConcurrentPerConnection} proxied requests in flight on this connection`),
      );
    }
    if (this.total >= s.maxConcurrent) {
      return this.answer(
        conn,
        sessionId,
        proxyReply(503, `over ${s.maxConcurrent} proxied requests in flight on this node`),
      );
    }
    if (calls === undefined) {
      calls = new Set();
      this.inflight.set(conn, calls);
    }
    const held = calls;
    const call = new UpstreamCall(
      {
        url: target,
        method,
        headers: prepared.headers,
        body: m.body,
        timeoutMs: prepared.timeoutMs,
        maxResponseBytes: s.maxResponseBytes,
      },
      // resolve() only returns URLs under a listed base: their origin has an agent.
      this.agents.get(target)!,
      (response) => {
        held.delete(call);
        this.total--;
        if (held.size === 0 && this.inflight.get(conn) === held) this.inflight.delete(conn);
        if (response.statusCode >= 500 || response.statusCode === 408) {
          this.log.debug('http proxy: upstream failed', {
            conn: conn.id,
            url: target.href,
            status: response.statusCode,
          });
        }
        this.answer(conn, sessionId, response);
      },
    );
    held.add(call);
    this.total++;
  }

  /** Requests in flight on this node. */
  get inFlight(): number {
    return this.total;
  }

  /** Answers one request and counts it by status class. */
  private answer(conn: Connection, sessionId: number, response: HttpResponseMessage): void {
    const a = this.stats.answered;
    const c = response.statusCode;
    if (c >= 200 && c < 300) a['2xx']++;
    else if (c >= 300 && c < 400) a['3xx']++;
    else if (c >= 400 && c < 500) a['4xx']++;
    else if (c >= 500 && c < 600) a['5xx']++;
    else a.other++;
    reply(conn, sessionId, response);
  }

  /** The connection closed: its requests are dropped, unanswered. */
  dropConnection(conn: Connection): void {
    const calls = this.inflight.get(conn);
    if (calls === undefined) return;
    this.inflight.delete(conn);
    this.total -= calls.size;
    for (const call of calls) call.abort();
  }

  /** Drops every request and closes the pooled sockets (node stop). */
  close(): void {
    for (const conn of [...this.inflight.keys()]) this.dropConnection(conn);
    this.agents.destroy();
  }

  /**
   * The upstream URL for a device's URL: its host must be a name of the list, and its path and
   * query go under that name's base URL (the device's scheme, port and credentials are not used).
   * An empty URL is 400; one that does not parse, or is not http(s), 502 (as MPush); any host the
   * list does not name, 403, whatever it is (a private address included).
   */
  private resolve(uri: string): URL | HttpResponseMessage {
    if (uri === '') return proxyReply(400, 'empty url');
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      return proxyReply(502, 'bad url');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return proxyReply(502, 'bad url: not http(s)');
    // The URL parser resolves `..` and `%2e%2e` but leaves an encoded slash alone; an upstream that
    // decodes it would walk `..%2F` out of the base path.
    if (/%2f|%5c/i.test(url.pathname)) return proxyReply(400, 'encoded slash in the path');
    const base = this.upstreams.get(url.hostname);
    if (base === undefined) return proxyReply(403, `host ${url.hostname} is not an allowed upstream`);
    const target = new URL(base.href);
    // Set as a path, never resolved against the base: `//other-host/x` stays a path on the base's host.
    const prefix = base.pathname.endsWith('/') ? base.pathname.slice(0, -1) : base.pathname;
    target.pathname = prefix + url.pathname;
    target.search = url.search;
    return target;
  }

  /**
   * The headers the upstream gets: the device's, less the ones it may not set, plus
   * `x-forwarded-for` / `x-forwarded-port` (the device's address, as MPush adds them) and
   * `x-mpush-user` (the bound user, percent-encoded) when bound. `readTimeout` lowers the deadline.
   * A header Node would refuse to send is answered 400.
   */
  private requestHeaders(
    conn: Connection,
    block: string,
    bodyLength: number,
  ): { headers: OutgoingHttpHeaders; timeoutMs: number } | HttpResponseMessage {
    const lines = parseHeaderLines(block);
    const drop = new Set(DEVICE_MAY_NOT_SET);
    for (const [name, value] of lines) {
      if (name.toLowerCase() === 'connection') for (const t of connectionTokens(value)) drop.add(t);
    }
    let timeoutMs = this.settings.timeoutMs;
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of lines) {
      const lower = name.toLowerCase();
      if (lower === READ_TIMEOUT_HEADER) {
        const n = Number(value);
        if (Number.isInteger(n) && n > 0) timeoutMs = Math.min(timeoutMs, n);
        continue;
      }
      if (drop.has(lower) || lower.startsWith('x-forwarded-') || lower.startsWith('proxy-')) continue;
      try {
        validateHeaderName(name);
        validateHeaderValue(name, value);
      } catch {
        return proxyReply(400, `bad header ${JSON.stringify(name.slice(0, 64))}`);
      }
      const prev = headers[lower];
      headers[lower] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    }
    const address = conn.transport.remoteAddress;
    const colon = address.lastIndexOf(':');
    headers['x-forwarded-for'] = colon > 0 ? address.slice(0, colon) : address;
    headers['x-forwarded-port'] = colon > 0 ? address.slice(colon + 1) : '0';
    if (conn.userId !== '') headers['x-mpush-user'] = encodeURIComponent(conn.userId);
    if (bodyLength > 0) headers['content-length'] = String(bodyLength);
    return { headers, timeoutMs };
  }
}
