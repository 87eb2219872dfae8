// HTTP requests through the long connection (MPush's HTTP_PROXY, mpush-wire §11) as the device SDKs
// offer them: a request object in, a response object out, the wire form (method byte, `name:value`
// header lines) in between. Browser-safe: no Node module, no Buffer.

import { formatHeaderLines, parseHeaderLines } from '../../protocol/http-headers.js';
import type { WireHttpRequest, WireHttpResponse } from './device-protocol.js';

/** The methods HttpRequest can carry (mpush-wire §3). */
export type HttpProxyMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

const METHOD_CODES: Readonly<Record<HttpProxyMethod, number>> = { GET: 0, POST: 1, PUT: 2, DELETE: 3 };

/** An HTTP request for the server to perform (`httpRequest` of both device clients). */
export interface HttpProxyRequest<B> {
  /**
   * Absolute URL whose host is a name of the server's `httpProxy.upstreams`: `http://api/users?id=1`
   * goes to that name's base URL, path and query appended.
   */
  url: string;
  /** Default `GET`. */
  method?: HttpProxyMethod;
  headers?: Readonly<Record<string, string>>;
  body?: B;
  /**
   * How long to wait for the answer, ms; default the client's `requestTimeoutMs`. The server is told a
   * little less (MPush's `readTimeout` header, unless `headers` sets one), so that it answers 408 first.
   */
  timeoutMs?: number;
}

/** The upstream's answer, or the server's own (403 not allowed, 408 timeout, 502, 504 ...). */
export interface HttpProxyResponse<B> {
  status: number;
  reason: string;
  /** Lower-case names; a name sent more than once has its values joined with `, `. */
  headers: Record<string, string>;
  body: B;
}

/** The readTimeout the server is told for a client timeout: 10 % less, at most 500 ms less. */
export function serverReadTimeout(timeoutMs: number): number {
  return Math.max(1, timeoutMs - Math.min(500, Math.floor(timeoutMs / 10)));
}

/**
 * The wire form of `r` with its resolved `body` and timeout.
 * @throws TypeError for an unknown method, or a header name or value that cannot travel.
 */
export function toWireRequest<B>(r: HttpProxyRequest<B>, body: B, timeoutMs: number): WireHttpRequest<B> {
  const method = METHOD_CODES[r.method ?? 'GET'];
  if (method === undefined) throw new TypeError(`httpRequest: method must be GET, POST, PUT or DELETE`);
  if (typeof r.url !== 'string' || r.url === '') throw new TypeError('httpRequest needs a url');
  const lines: Array<[string, string]> = [];
  let readTimeout = false;
  for (const [name, value] of Object.entries(r.headers ?? {})) {
    if (name === '' || /[:\r\n]/.test(name) || /[\r\n]/.test(value)) {
      throw new TypeError(`httpRequest: header ${JSON.stringify(name)} cannot travel`);
    }
    if (name.toLowerCase() === 'readtimeout') readTimeout = true;
    lines.push([name, value]);
  }
  if (!readTimeout) lines.push(['readTimeout', String(serverReadTimeout(timeoutMs))]);
  return { method, uri: r.url, headers: formatHeaderLines(lines), body };
}

/** The response object of a wire response. */
export function fromWireResponse<B>(r: WireHttpResponse<B>): HttpProxyResponse<B> {
  const headers: Record<string, string> = {};
  for (const [name, value] of parseHeaderLines(r.headers)) {
    const key = name.toLowerCase();
    const prev = headers[key];
    headers[key] = prev === undefined ? value : `${prev}, ${value}`;
  }
  return { status: r.statusCode, reason: r.reasonPhrase, headers, body: r.body };
}
