// MPush's allocator ("allotServer"): an HTTP URL answering the device addresses to connect to as
// plain text, `host:port,host:port`, in the order to try them. MPush's Java SDK splits the body on
// `,` and `:` without trimming, so the server writes no whitespace and no trailing newline.

import { DeviceClientError } from './errors.js';
import type { ServerAddress } from './tcp-client-options.js';

/** The allocator's body for `addresses`: `host:port` joined by `,`, nothing else (no newline). */
export function formatServerList(addresses: ReadonlyArray<ServerAddress>): string {
  return addresses.map((a) => `${a.host}:${a.port}`).join(',');
}

function allocError(message: string, cause?: unknown): DeviceClientError {
  return new DeviceClientError('MPUSH_ERR_ALLOC', message, cause === undefined ? undefined : { cause });
}

/** A host as the list may carry it: a name or an address, without spaces, commas or controls. */
const HOST = /^[^\s,\x00-\x1f\x7f]+$/;

/**
 * Reads an allocator body (`host:port,host:port`; the port after the last `:`). Throws
 * {@link DeviceClientError} `MPUSH_ERR_ALLOC` naming the first malformed entry, or when the list is
 * empty. One trailing newline is tolerated (other allocators write one; MPush's SDK would not).
 */
export function parseServerList(text: string): ServerAddress[] {
  const body = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
  if (body === '') throw allocError('the allocator listed no server');
  return body.split(',').map((entry) => {
    const colon = entry.lastIndexOf(':');
    const host = entry.slice(0, colon);
    const port = entry.slice(colon + 1);
    if (colon <= 0 || !HOST.test(host) || !/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)
      throw allocError(`malformed allocator entry ${JSON.stringify(entry.slice(0, 100))} (want host:port)`);
    return { host, port: Number(port) };
  });
}

/** Limits of one allocator request. */
export interface AllocRequestOptions {
  /** The whole request, body included, must finish within this (ms). */
  timeoutMs: number;
  /** Largest body accepted (bytes); a longer one is an error. */
  maxBytes: number;
}

/**
 * GETs the allocator at `url` (global fetch) and reads its list. Rejects with
 * {@link DeviceClientError} `MPUSH_ERR_ALLOC` on a network failure, a timeout, a status other than
 * 200, a body over `maxBytes` (read no further) or a malformed list.
 */
export async function fetchServerList(url: string, o: AllocRequestOptions): Promise<ServerAddress[]> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(o.timeoutMs), headers: { accept: 'text/plain' } });
  } catch (err) {
    throw allocError(`allocator ${url} unreachable: ${(err as Error).message}`, err);
  }
  const reader = res.body?.getReader();
  try {
    if (res.status !== 200) throw allocError(`allocator ${url} answered ${res.status}`);
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > o.maxBytes) throw allocError(`allocator body of ${declared} bytes is over ${o.maxBytes}`);
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = reader ? await reader.read() : { done: true, value: undefined };
      if (done) break;
      size += value.byteLength;
      if (size > o.maxBytes) throw allocError(`allocator body is over ${o.maxBytes} bytes`);
      chunks.push(value);
    }
    return parseServerList(new TextDecoder('utf-8', { fatal: false }).decode(concat(chunks, size)));
  } catch (err) {
    if (err instanceof DeviceClientError) throw err;
    throw allocError(`allocator ${url} failed: ${(err as Error).message}`, err);
  } finally {
    reader?.cancel().catch(() => {});
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
