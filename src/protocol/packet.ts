/** Length of the packet header in bytes (mpush-wire §1). */
export const HEADER_LENGTH = 13;
/** The heartbeat is this single byte, with no header. */
export const HEARTBEAT_BYTE = 0xdf;
/** MPush's default `max-packet-size` (body bytes). */
export const DEFAULT_MAX_BODY_LENGTH = 10 * 1024;

/** One framed packet. `body` is the body as it travels (possibly compressed and encrypted). */
export interface Packet {
  cmd: number;
  flags: number;
  sessionId: number;
  body: Buffer;
  /** Checksum short; MPush sends 0 and never checks it. */
  cc?: number;
  /** Header LRC byte; MPush sends 0 and never checks it. */
  lrc?: number;
}

const EMPTY = Buffer.alloc(0);

/** Builds a packet with an empty body unless one is given. */
export function packet(cmd: number, sessionId = 0, flags = 0, body: Buffer = EMPTY): Packet {
  return { cmd, flags, sessionId, body };
}

/** Writes the 13-byte header for `p` into `target` at `offset`. */
export function writeHeader(target: Buffer, offset: number, p: Packet): void {
  target.writeInt32BE(p.body.length, offset);
  target[offset + 4] = p.cmd & 0xff;
  target.writeInt16BE(p.cc ?? 0, offset + 5);
  target[offset + 7] = p.flags & 0xff;
  target.writeInt32BE(p.sessionId | 0, offset + 8);
  target[offset + 12] = (p.lrc ?? 0) & 0xff;
}

/** Encodes header + body into one buffer (mpush-wire §1). */
export function encodePacket(p: Packet): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LENGTH + p.body.length);
  writeHeader(out, 0, p);
  p.body.copy(out, HEADER_LENGTH);
  return out;
}

/** The one-byte heartbeat frame. */
export const HEARTBEAT_FRAME: Buffer = Buffer.from([HEARTBEAT_BYTE]);
