import type { Cipher } from '../crypto/index.js';
import { deflate } from '../crypto/index.js';
import {
  Command,
  ErrorCodec,
  type ErrorMessage,
  encodeJsonPacket,
  FastConnectOkCodec,
  Flags,
  HandshakeOkCodec,
  type HandshakeOkMessage,
  HEADER_LENGTH,
  HttpResponseCodec,
  type HttpResponseMessage,
  KickCodec,
  type KickMessage,
  OkCodec,
  type OkMessage,
  writeHeader,
} from '../protocol/index.js';

/**
 * A message from server to device, independent of how it travels: the connection's wire
 * (binary with its cipher, or WebSocket JSON) turns it into bytes or text.
 */
export type Outbound =
  | { cmd: typeof Command.OK; sessionId: number; body: OkMessage }
  | { cmd: typeof Command.ERROR; sessionId: number; body: ErrorMessage }
  | { cmd: typeof Command.HANDSHAKE; sessionId: number; body: HandshakeOkMessage }
  | { cmd: typeof Command.FAST_CONNECT; sessionId: number; body: { heartbeat: number } }
  | { cmd: typeof Command.PUSH; sessionId: number; flags: number; content: Buffer }
  | { cmd: typeof Command.KICK; sessionId: number; body: KickMessage }
  | { cmd: typeof Command.ACK; sessionId: number }
  | { cmd: typeof Command.HTTP_PROXY; sessionId: number; body: HttpResponseMessage };

const EMPTY = Buffer.alloc(0);

/**
 * Encodes for the binary protocol. What is encrypted follows MPush (mpush-wire §5): OK, ERROR,
 * FastConnectOk and ACK go raw; the rest uses the connection's current cipher when it has one.
 * Bodies over `compressThreshold` are deflated first (PUSH and HTTP responses).
 */
export function encodeBinary(out: Outbound, cipher: Cipher | null, compressThreshold: number): Buffer {
  let body: Buffer;
  let flags = 0;
  let encrypt = cipher !== null;
  let compressible = false;
  switch (out.cmd) {
    case Command.OK:
      body = OkCodec.encode(out.body);
      encrypt = false;
      break;
    case Command.ERROR:
      body = ErrorCodec.encode(out.body);
      encrypt = false;
      break;
    case Command.FAST_CONNECT:
      body = FastConnectOkCodec.encode(out.body);
      encrypt = false;
      break;
    case Command.ACK:
      body = EMPTY;
      encrypt = false;
      break;
    case Command.HANDSHAKE:
      body = HandshakeOkCodec.encode(out.body);
      break;
    case Command.KICK:
      body = KickCodec.encode(out.body);
      break;
    case Command.PUSH:
      body = out.content;
      flags = out.flags & (Flags.BIZ_ACK | Flags.AUTO_ACK);
      compressible = true;
      break;
    case Command.HTTP_PROXY:
      body = HttpResponseCodec.encode(out.body);
      compressible = true;
      break;
  }
  if (compressible && body.length > compressThreshold) {
    body = deflate(body);
    flags |= Flags.COMPRESS;
  }
  if (encrypt) {
    body = cipher!.encrypt(body);
    flags |= Flags.CRYPTO;
  }
  const frame = Buffer.allocUnsafe(HEADER_LENGTH + body.length);
  writeHeader(frame, 0, { cmd: out.cmd, flags, sessionId: out.sessionId, body });
  body.copy(frame, HEADER_LENGTH);
  return frame;
}

/** Encodes for MPush's WebSocket JSON protocol (mpush-wire §10). */
export function encodeJson(out: Outbound): string {
  switch (out.cmd) {
    case Command.OK:
    case Command.ERROR:
    case Command.KICK:
    case Command.FAST_CONNECT:
      return encodeJsonPacket(out.cmd, out.sessionId, { ...out.body });
    case Command.HANDSHAKE:
      return encodeJsonPacket(out.cmd, out.sessionId, {
        heartbeat: out.body.heartbeat,
        sessionId: out.body.sessionId,
        expireTime: out.body.expireTime,
      });
    case Command.PUSH:
      // The ack flags travel in the packet flags, as on the binary protocol.
      return encodeJsonPacket(
        out.cmd,
        out.sessionId,
        { content: out.content.toString('utf8') },
        out.flags & (Flags.BIZ_ACK | Flags.AUTO_ACK),
      );
    case Command.ACK:
      return encodeJsonPacket(out.cmd, out.sessionId, {});
    case Command.HTTP_PROXY:
      return encodeJsonPacket(out.cmd, out.sessionId, {
        statusCode: out.body.statusCode,
        reasonPhrase: out.body.reasonPhrase,
        headers: out.body.headers,
        body: out.body.body.toString('utf8'),
      });
  }
}
