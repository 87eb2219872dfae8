import { Flags } from './command.js';
import { ProtocolError } from './errors.js';

/**
 * The WebSocket form of a packet (mpush-wire §10): one JSON object per text frame.
 * No encryption and no compression; `flags` carries JSON_BODY.
 */
export interface JsonPacket {
  cmd: number;
  flags: number;
  sessionId: number;
  body: Record<string, unknown>;
}

/** Serialises one packet; JSON_BODY is always set in `flags`. */
export function encodeJsonPacket(
  cmd: number,
  sessionId: number,
  body: Record<string, unknown>,
  flags: number = Flags.JSON_BODY,
): string {
  return JSON.stringify({ cmd, flags: flags | Flags.JSON_BODY, sessionId, body });
}

function isInt32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff;
}

/**
 * Parses and validates one text frame. The caller bounds the frame size before this runs
 * (the WebSocket server's max payload).
 * @throws ProtocolError `MPUSH_ERR_BAD_JSON_PACKET` for anything that is not a packet object.
 */
export function decodeJsonPacket(text: string): JsonPacket {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ProtocolError('MPUSH_ERR_BAD_JSON_PACKET', 'frame is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ProtocolError('MPUSH_ERR_BAD_JSON_PACKET', 'packet must be a JSON object');
  }
  const o = v as Record<string, unknown>;
  if (!isInt32(o.cmd) || o.cmd < 0 || o.cmd > 255) {
    throw new ProtocolError('MPUSH_ERR_BAD_JSON_PACKET', 'packet.cmd must be an integer command code');
  }
  const flags = o.flags ?? 0;
  const sessionId = o.sessionId ?? 0;
  const body = o.body ?? {};
  if (!isInt32(flags) || !isInt32(sessionId)) {
    throw new ProtocolError(
      'MPUSH_ERR_BAD_JSON_PACKET',
      'packet.flags and packet.sessionId must be integers',
    );
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ProtocolError('MPUSH_ERR_BAD_JSON_PACKET', 'packet.body must be an object');
  }
  return { cmd: o.cmd, flags, sessionId, body: body as Record<string, unknown> };
}

/** Reads an optional string field of a JSON body: absent or null is `''`, any other type an error. */
export function jsonStringField(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new ProtocolError('MPUSH_ERR_BAD_FIELD', `body.${key} must be a string`);
  return v;
}

/** Reads an optional integer field of a JSON body, with a default. */
export function jsonIntField(body: Record<string, unknown>, key: string, fallback: number): number {
  const v = body[key];
  if (v === undefined || v === null) return fallback;
  if (!isInt32(v)) throw new ProtocolError('MPUSH_ERR_BAD_FIELD', `body.${key} must be an integer`);
  return v;
}
