import { Command, ErrorCodec, OkCodec, type Packet, ProtocolError } from '../../protocol/index.js';
import type { RouteEntry } from './types.js';

/**
 * The one decode of what a gateway answers (mpush-wire §9): every reply the push client reads goes
 * through here, checked field by field, so a reply that does not hold what it should is an error
 * for the request it names, never a `TypeError` deep in a handler or a wrong count in a result.
 * (client/ carries no zod: these are the few shapes the gateway sends, checked by hand.)
 */
export type GatewayReply = { ok: true; data: string } | { ok: false; code: number; reason: string };

function bad(what: string): ProtocolError {
  return new ProtocolError('MPUSH_ERR_BAD_FIELD', `malformed gateway reply: ${what}`);
}

/** OK or ERROR, with its body decoded. Throws a {@link ProtocolError} on anything else. */
export function decodeReply(p: Packet): GatewayReply {
  try {
    if (p.cmd === Command.OK) return { ok: true, data: OkCodec.decode(p.body).data };
    if (p.cmd === Command.ERROR) {
      const e = ErrorCodec.decode(p.body);
      return { ok: false, code: e.code, reason: e.reason || 'gateway error' };
    }
  } catch (err) {
    throw bad(`${p.cmd === Command.OK ? 'OK' : 'ERROR'} body: ${(err as Error).message}`);
  }
  throw bad(`command ${p.cmd} is neither OK nor ERROR`);
}

function parse(data: string, what: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw bad(`${what} is not JSON`);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The node's time points of a delivered push (OK data `{userId, clientType, timePoints}`): an
 * object of name → ms from mpush-ts, or MPush's flat `[name, ms, name, ms, …]` array from a
 * gateway that answers as MPush does (mpush-wire §9).
 */
export function decodePushOk(data: string): Record<string, number> | undefined {
  if (data === '') return undefined;
  const v = parse(data, 'push OK data');
  if (!isRecord(v)) throw bad('push OK data is not an object');
  const tp = v.timePoints;
  if (tp === undefined) return undefined;
  if (Array.isArray(tp)) return pairsToRecord(tp);
  if (!isRecord(tp)) throw bad('timePoints is not an object');
  for (const k in tp) if (typeof tp[k] !== 'number') throw bad(`timePoints.${k} is not a number`);
  return tp as Record<string, number>;
}

function pairsToRecord(tp: unknown[]): Record<string, number> {
  if (tp.length % 2 !== 0) throw bad('timePoints array is not name/time pairs');
  const out: Record<string, number> = {};
  for (let i = 0; i < tp.length; i += 2) {
    const name = tp[i];
    const t = tp[i + 1];
    if (typeof name !== 'string' || typeof t !== 'number')
      throw bad(`timePoints[${i}] is not a name/time pair`);
    out[name] = t;
  }
  return out;
}

/**
 * A route query's answer: user id → that user's routes. Only the users asked about are read;
 * a user missing from the answer has no route.
 */
export function decodeRoutes(data: string, userIds: readonly string[]): Map<string, RouteEntry[]> {
  const v = parse(data, 'route query answer');
  if (!isRecord(v)) throw bad('route query answer is not an object');
  const out = new Map<string, RouteEntry[]>();
  for (const u of userIds) {
    const rs = Object.hasOwn(v, u) ? v[u] : undefined;
    if (rs === undefined) {
      out.set(u, []);
      continue;
    }
    if (!Array.isArray(rs)) throw bad(`routes of a user are not an array`);
    out.set(
      u,
      rs.map((r: unknown) => {
        if (
          !isRecord(r) ||
          !Number.isInteger(r.clientType) ||
          typeof r.host !== 'string' ||
          !Number.isInteger(r.port) ||
          (r.port as number) <= 0 ||
          (r.port as number) > 65535
        ) {
          throw bad('a route needs clientType, host and port');
        }
        return {
          clientType: r.clientType as number,
          host: r.host,
          port: r.port as number,
          connId: typeof r.connId === 'string' ? r.connId : '',
        };
      }),
    );
  }
  return out;
}

/** A broadcast task's counts on one node (OK data of a broadcast push or control). */
export interface TaskReport {
  status: string;
  matched: number;
  sent: number;
  acked: number;
  failed: number;
}

export function decodeTaskReport(data: string): TaskReport {
  const v = parse(data, 'broadcast report');
  if (!isRecord(v) || typeof v.status !== 'string') throw bad('broadcast report needs a status');
  const count = (k: string): number => {
    const n = v[k] ?? 0;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw bad(`broadcast report ${k}`);
    return n;
  };
  return {
    status: v.status,
    matched: count('matched'),
    sent: count('sent'),
    acked: count('acked'),
    failed: count('failed'),
  };
}
