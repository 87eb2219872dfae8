import { BodyReader, BodyWriter, LONG_LENGTH_MARK } from './body.js';
import { Command } from './command.js';
import { ProtocolError } from './errors.js';
import type { MessageCodec } from './messages.js';
import { HEADER_LENGTH } from './packet.js';
import { MAX_MESSAGE_ID_LENGTH } from './push-ext.js';

/**
 * Bodies of the commands mpush-ts adds on the gateway port ({@link ExtCommand}), as codecs like
 * MPush's own in messages.ts. Push clients encode them and the gateway decodes them, so both
 * sides share one definition of the bytes. Each is answered by OK (data: JSON) or ERROR.
 */

/** GATEWAY_ROUTE_QUERY: where are these users? The body is the ids as one JSON array string. */
export interface RouteQueryMessage {
  userIds: readonly string[];
}

export const RouteQueryCodec: MessageCodec<RouteQueryMessage> = {
  encode: (m) => new BodyWriter(64).writeString(JSON.stringify(m.userIds)).finish(),
  decode: (body) => {
    const json = new BodyReader(body).readString();
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      throw new ProtocolError('MPUSH_ERR_BAD_FIELD', 'route query user ids are not JSON');
    }
    if (!Array.isArray(parsed) || !parsed.every((u) => typeof u === 'string')) {
      throw new ProtocolError('MPUSH_ERR_BAD_FIELD', 'route query user ids must be a JSON array of strings');
    }
    return { userIds: parsed };
  },
};

/** GATEWAY_BROADCAST_CONTROL actions. */
export const BroadcastAction = { QUERY: 0, CANCEL: 1 } as const;

/** GATEWAY_BROADCAST_CONTROL: a broadcast task's counts, or its cancel. */
export interface BroadcastControlMessage {
  taskId: string;
  /**
   * A {@link BroadcastAction}. Decoded as sent: the gateway treats any value but CANCEL as a
   * query, so an unknown action is not a decode error.
   */
  action: number;
}

export const BroadcastControlCodec: MessageCodec<BroadcastControlMessage> = {
  encode: (m) => new BodyWriter(64).writeString(m.taskId).writeByte(m.action).finish(),
  decode: (body) => {
    const r = new BodyReader(body);
    return { taskId: r.readString(), action: r.readByte() };
  },
};

/**
 * GATEWAY_AUTH: a push client proves it holds the gateway secret without sending it, for this
 * connection only. `mac` is HMAC-SHA256 over the nonce the gateway sent in its GATEWAY_HELLO reply
 * and the client id (crypto/gateway-mac.ts computes and checks it): a packet captured on one
 * connection is refused on any other, whose nonce differs.
 */
export interface GatewayAuthMessage {
  clientId: string;
  mac: Buffer;
}

export const GatewayAuthCodec: MessageCodec<GatewayAuthMessage> = {
  encode: (m) => new BodyWriter(64).writeString(m.clientId).writeBytes(m.mac).finish(),
  decode: (body) => {
    const r = new BodyReader(body);
    return { clientId: r.readString(), mac: r.readBytes() };
  },
};

/** GATEWAY_MESSAGE_STATUS: the receipt of one message (a push sent with the inbox extension). */
export interface MessageStatusMessage {
  messageId: string;
}

export const MessageStatusCodec: MessageCodec<MessageStatusMessage> = {
  encode: (m) => new BodyWriter(64).writeString(m.messageId).finish(),
  decode: (body) => {
    const messageId = new BodyReader(body).readString();
    if (messageId === '' || messageId.length > MAX_MESSAGE_ID_LENGTH)
      throw new ProtocolError(
        'MPUSH_ERR_BAD_FIELD',
        `message status needs a messageId of 1 to ${MAX_MESSAGE_ID_LENGTH} characters`,
      );
    return { messageId };
  },
};

/**
 * The extension version this code speaks (GATEWAY_HELLO). 2: the hello reply carries the login
 * challenge, and GATEWAY_AUTH answers it (version 1's timestamped GATEWAY_AUTH is refused).
 */
export const GATEWAY_EXT_VERSION = 2;

/**
 * GATEWAY_HELLO: a push client says it speaks mpush-ts's gateway extensions, at `version`. The
 * gateway answers OK with {@link GatewayHelloReply} as data. A connection that never says hello
 * (MPush's own PushClient) gets MPush's replies only: no ERROR on an ack timeout, MPush's time
 * points. With a gateway secret, hello is the one request answered before GATEWAY_AUTH.
 *
 * `timePoints`: whether the OK to each GATEWAY_PUSH carries the node's time points. Sent as a
 * flags byte after the version ({@link HELLO_TIME_POINTS}); a hello without it (4 bytes, as
 * earlier push clients send it) asks for them, and a gateway that does not read the byte ignores it.
 */
export interface GatewayHelloMessage {
  version: number;
  timePoints?: boolean;
}

/** Hello flag: the push client wants the time points in its push replies. */
export const HELLO_TIME_POINTS = 1;

export const GatewayHelloCodec: MessageCodec<GatewayHelloMessage> = {
  encode: (m) => {
    const w = new BodyWriter(5).writeInt(m.version);
    if (m.timePoints !== undefined) w.writeByte(m.timePoints ? HELLO_TIME_POINTS : 0);
    return w.finish();
  },
  decode: (body) => {
    const r = new BodyReader(body);
    const version = r.readInt();
    if (r.remaining === 0) return { version };
    return { version, timePoints: (r.readByte() & HELLO_TIME_POINTS) !== 0 };
  },
};

/**
 * The data of the OK to GATEWAY_HELLO: `{"version":2}`, and on a connection that must still
 * authenticate, the challenge GATEWAY_AUTH signs: `{"version":2,"nonce":"<64 hex digits>"}`, fresh
 * for each connection. A version-1 gateway answered the bare version (`1`).
 */
export interface GatewayHelloReply {
  version: number;
  nonce?: Buffer;
}

export function encodeHelloReply(r: GatewayHelloReply): string {
  return JSON.stringify(
    r.nonce ? { version: r.version, nonce: r.nonce.toString('hex') } : { version: r.version },
  );
}

export function decodeHelloReply(data: string): GatewayHelloReply {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    v = undefined;
  }
  if (typeof v === 'number') return { version: v };
  const o = v as { version?: unknown; nonce?: unknown } | null | undefined;
  if (typeof o !== 'object' || o === null || typeof o.version !== 'number')
    throw new ProtocolError('MPUSH_ERR_BAD_FIELD', 'malformed GATEWAY_HELLO reply');
  if (o.nonce === undefined) return { version: o.version };
  if (typeof o.nonce !== 'string' || !/^(?:[0-9a-f]{2})+$/.test(o.nonce))
    throw new ProtocolError('MPUSH_ERR_BAD_FIELD', 'GATEWAY_HELLO reply nonce is not hex');
  return { version: o.version, nonce: Buffer.from(o.nonce, 'hex') };
}

/**
 * The data of a GATEWAY_PUSH reply as MPush 0.8.1's server writes it (its GatewayPushResult, by
 * fastjson: keys in alphabetical order, clientType left out when not positive) and its
 * PushClient reads it. `timePoints` is MPush's flat array of name/millisecond pairs
 * (mpush-wire §9).
 */
export function mpushPushResult(
  userId: string,
  clientType: number,
  timePoints: ReadonlyArray<string | number>,
): string {
  const type = clientType > 0 ? `"clientType":${clientType},` : '';
  return `{${type}"timePoints":${JSON.stringify(timePoints)},"userId":${JSON.stringify(userId)}}`;
}

/**
 * An OK packet answering `cmd`, in one buffer: the bytes of
 * `encodePacket({cmd: OK, flags: 0, sessionId, body: OkCodec.encode({cmd, code: 0, data})})`
 * (mpush-wire §1, §9), without the body's own buffers. The gateway answers every request with it.
 */
export function encodeOkFrame(cmd: number, sessionId: number, data: string): Buffer {
  const n = data.length === 0 ? 0 : Buffer.byteLength(data);
  const prefix = n < LONG_LENGTH_MARK ? 2 : 6;
  const bodyLength = 2 + prefix + n;
  const out = Buffer.allocUnsafe(HEADER_LENGTH + bodyLength);
  out.writeInt32BE(bodyLength, 0);
  out[4] = Command.OK;
  out.writeInt16BE(0, 5);
  out[7] = 0;
  out.writeInt32BE(sessionId | 0, 8);
  out[12] = 0;
  out[13] = cmd & 0xff;
  out[14] = 0;
  if (prefix === 2) out.writeInt16BE(n, 15);
  else {
    out.writeInt16BE(LONG_LENGTH_MARK, 15);
    out.writeInt32BE(n - LONG_LENGTH_MARK, 17);
  }
  if (n > 0) out.write(data, HEADER_LENGTH + 2 + prefix);
  return out;
}

/**
 * The data of an OK to GATEWAY_PUSH on a connection that said GATEWAY_HELLO, as
 * `JSON.stringify({userId, clientType, timePoints, ...rest})` writes it, built without the nested
 * object: `timePoints` (name → ms; the push center's names, plain identifiers) is left out when
 * undefined (a push client that did not ask for them), and `rest` is a flat JSON object whose
 * members follow.
 */
export function pushOkData(
  userId: string,
  clientType: number,
  timePoints: Readonly<Record<string, number>> | undefined,
  rest?: string,
): string {
  let out = `{"userId":${JSON.stringify(userId)},"clientType":${clientType}`;
  if (timePoints !== undefined) {
    let sep = '{';
    out += ',"timePoints":';
    for (const k in timePoints) {
      out += `${sep}"${k}":${timePoints[k]}`;
      sep = ',';
    }
    out += sep === '{' ? '{}' : '}';
  }
  if (rest !== undefined && rest.length > 2) out += `,${rest.slice(1, -1)}`;
  return `${out}}`;
}

/** MPush's reason text for the error codes its gateway sends (its ErrorCode enum). */
export const MPUSH_REASONS: Readonly<Record<number, string>> = Object.freeze({
  1: 'user offline',
  2: 'push to client failure',
  3: 'router change',
  4: 'ack timeout',
});

/** The name MPush's timeline gives the end of a push that ended with an ERROR code. */
export const MPUSH_END_POINTS: Readonly<Record<number, string>> = Object.freeze({
  1: 'offline-end',
  2: 'failure-end',
  3: 'redirect-end',
  4: 'timeout-end',
});
