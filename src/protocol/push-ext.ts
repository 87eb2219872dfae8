import { ProtocolError } from './errors.js';

/**
 * The inbox options of a unicast GATEWAY_PUSH (mpush-ts extension, carried as one JSON string
 * after the broadcast fields; mpush-wire §9 stays as it is for push clients that do not send it).
 * Sending it at all — even `{}` — asks for the extended replies: OK data gains `messageId` and
 * `stored`, and an ERROR's `data` carries `{"messageId","stored"}` (plus `storeError`).
 */
export interface PushExt {
  /** The message's id (the caller's msgId); the gateway generates one when absent. */
  messageId?: string;
  /** Keep the message in the user's inbox when the device is offline or does not ack in time. */
  store?: boolean;
  /** Seconds the stored message waits (default `inbox.defaultTtlSeconds`). */
  ttl?: number;
}

/** Longest messageId accepted on the wire and the HTTP API. */
export const MAX_MESSAGE_ID_LENGTH = 128;

export function encodePushExt(ext: PushExt): string {
  return JSON.stringify(ext);
}

/** @throws ProtocolError when the string is not a {@link PushExt}. */
export function decodePushExt(json: string): PushExt {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new ProtocolError('MPUSH_ERR_BAD_FIELD', 'gateway push extension is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ProtocolError('MPUSH_ERR_BAD_FIELD', 'gateway push extension must be a JSON object');
  const o = v as Record<string, unknown>;
  const ext: PushExt = {};
  if (o.messageId !== undefined) {
    if (typeof o.messageId !== 'string' || o.messageId === '' || o.messageId.length > MAX_MESSAGE_ID_LENGTH)
      throw new ProtocolError(
        'MPUSH_ERR_BAD_FIELD',
        `gateway push messageId must be a string of 1 to ${MAX_MESSAGE_ID_LENGTH} characters`,
      );
    ext.messageId = o.messageId;
  }
  if (o.store !== undefined) {
    if (typeof o.store !== 'boolean')
      throw new ProtocolError('MPUSH_ERR_BAD_FIELD', 'gateway push store must be true or false');
    ext.store = o.store;
  }
  if (o.ttl !== undefined) {
    if (!Number.isInteger(o.ttl) || (o.ttl as number) < 1)
      throw new ProtocolError('MPUSH_ERR_BAD_FIELD', 'gateway push ttl must be a positive integer (seconds)');
    ext.ttl = o.ttl as number;
  }
  return ext;
}
