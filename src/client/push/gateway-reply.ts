import { Command, ErrorCodec, OkCodec, type Packet, ProtocolError } from '../../protocol/index.js';
import type { MessageReceipt, RouteEntry } from './types.js';

/**
 * The one decode of what a gateway answers (mpush-wire §9): every reply the push client reads goes
 * through here, checked field by field, so a reply that does not hold what it should is an error
 * for the request it names, never a `TypeError` deep in a handler or a wrong count in a result.
 * (client/ carries no zod: these are the few shapes the gateway sends, checked by hand.)
 */
export type GatewayReply =
  | { ok: true; data: string }
  | { ok: false; code: number; reason: string; data: string };

function bad(what: string): ProtocolError {
  return new ProtocolError('MPUSH_ERR_BAD_FIELD', `malformed gateway reply: ${what}`);
}

/** OK or ERROR, with its body decoded. Throws a {@link ProtocolError} on anything else. */
export function decodeReply(p: Packet): GatewayReply {
  try {
    if (p.cmd === Command.OK) return { ok: true, data: OkCodec.decode(p.body).data };
    if (p.cmd === Command.ERROR) {
      const e = ErrorCodec.decode(p.body);
      return { ok: false, code: e.code, reason: e.reason || 'gateway error', data: e.data };
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
  return timePointsOf(v.timePoints);
}

function timePointsOf(tp: unknown): Record<string, number> | undefined {
  if (tp === undefined) return undefined;
  if (Array.isArray(tp)) return pairsToRecord(tp);
  if (!isRecord(tp)) throw bad('timePoints is not an object');
  for (const k in tp) if (typeof tp[k] !== 'number') throw bad(`timePoints.${k} is not a number`);
  return tp as Record<string, number>;
}

/** What a push reply says beyond its outcome. */
export interface PushReplyInfo {
  /** The node's time points, on success. */
  timePoints?: Record<string, number>;
  /** The node kept the message in the user's inbox (inbox extension, push-ext.ts). */
  stored: boolean;
  storeError?: string;
}

const NOTHING_STORED: PushReplyInfo = Object.freeze({ stored: false });

/**
 * What a push reply's data holds: OK data `{userId, clientType, timePoints, messageId?, stored?,
 * storeError?}` (timePoints an object of name → ms from mpush-ts, or MPush's flat `[name, ms, …]`
 * array from a gateway that answers as MPush does, mpush-wire §9); an ERROR's data, from a gateway
 * sent the inbox extension, `{messageId, stored, storeError?}` (MPush's own GatewayPushResult, or
 * nothing, from others). A messageId, when there, must be the one sent (`messageId`).
 */
export function decodePushReply(data: string, messageId: string, ok: boolean): PushReplyInfo {
  if (data === '') return NOTHING_STORED;
  const v = parse(data, ok ? 'push OK data' : 'push ERROR data');
  if (!isRecord(v)) throw bad(`push ${ok ? 'OK' : 'ERROR'} data is not an object`);
  if (v.messageId !== undefined && v.messageId !== messageId)
    throw bad(`push reply names message ${JSON.stringify(v.messageId)}, not ${JSON.stringify(messageId)}`);
  if (v.stored !== undefined && typeof v.stored !== 'boolean') throw bad('stored is not a boolean');
  if (v.storeError !== undefined && typeof v.storeError !== 'string') throw bad('storeError is not a string');
  const tp = ok ? timePointsOf(v.timePoints) : undefined;
  if (tp === undefined && v.stored === undefined) return NOTHING_STORED;
  const out: PushReplyInfo = { stored: v.stored === true };
  if (v.storeError !== undefined) out.storeError = v.storeError as string;
  if (tp !== undefined) out.timePoints = tp;
  return out;
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

const RECEIPT_STATES = new Set(['stored', 'sent', 'acked', 'expired', 'dropped']);
const INBOX_STATES = new Set(['stored', 'expired', 'dropped']);

function optionalTime(o: Record<string, unknown>, k: string, what: string): void {
  if (o[k] !== undefined && typeof o[k] !== 'number') throw bad(`${what}.${k} is not a number`);
}

/** A message's receipt (OK data of GATEWAY_MESSAGE_STATUS). */
export function decodeReceipt(data: string): MessageReceipt {
  const v = parse(data, 'message receipt');
  if (!isRecord(v) || typeof v.messageId !== 'string') throw bad('a receipt needs a messageId');
  if (typeof v.createdAt !== 'number' || typeof v.updatedAt !== 'number')
    throw bad('a receipt needs createdAt and updatedAt');
  if (!Array.isArray(v.users)) throw bad('receipt users is not an array');
  for (const u of v.users as unknown[]) {
    if (!isRecord(u) || typeof u.userId !== 'string') throw bad('a receipt user needs a userId');
    if (u.inbox !== null && !INBOX_STATES.has(u.inbox as string)) throw bad('receipt inbox state');
    for (const k of ['storedAt', 'expiredAt', 'droppedAt']) optionalTime(u, k, 'receipt user');
    if (!Array.isArray(u.devices)) throw bad('receipt devices is not an array');
    for (const d of u.devices as unknown[]) {
      if (
        !isRecord(d) ||
        !Number.isInteger(d.clientType) ||
        typeof d.clientTypeName !== 'string' ||
        !RECEIPT_STATES.has(d.state as string)
      )
        throw bad('a receipt device needs clientType, clientTypeName and state');
      for (const k of ['storedAt', 'sentAt', 'ackedAt', 'expiredAt', 'droppedAt'])
        optionalTime(d, k, 'receipt device');
    }
  }
  return v as unknown as MessageReceipt;
}
