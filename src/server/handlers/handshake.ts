import { hash } from 'node:crypto';
import { type Connection, Disconnect } from '../../connection/index.js';
import { AesCipher, mixKey, randomKey } from '../../crypto/index.js';
import { Command, clientTypeOf, ErrorCode, type HandshakeMessage } from '../../protocol/index.js';
import { intern } from '../../util/intern.js';
import type { HandlerContext } from '../handler-context.js';
import { replyError } from './reply.js';

/** Negotiated heartbeat = max(serverMin, min(clientMax, serverMax)) (mpush-wire §7). */
export function negotiateHeartbeat(ctx: HandlerContext, clientMax: number): number {
  const { minMs, maxMs } = ctx.config.heartbeat;
  return Math.max(minMs, Math.min(clientMax > 0 ? clientMax : maxMs, maxMs));
}

/** MPush's session id: MD5 of the deviceId and the time, in hex (one-shot `hash`, no Hash object). */
const sessionIdOf = (deviceId: string, now: number) => hash('md5', deviceId + now, 'hex');

/**
 * Gives the connection its device identity. A binding made under an earlier identity (a second
 * handshake or fast connect on the same connection) is dropped first, while the router can still
 * find it under the old client type: left in place, it would outlive the connection.
 */
function identify(
  ctx: HandlerContext,
  conn: Connection,
  m: Pick<HandshakeMessage, 'deviceId' | 'osName' | 'osVersion' | 'clientVersion'>,
): void {
  if (conn.userId !== '') ctx.unbind(conn);
  conn.deviceId = m.deviceId;
  // Shared by most devices: one string each for all of them (about 70 bytes per connection).
  conn.osName = intern(m.osName);
  conn.osVersion = intern(m.osVersion);
  conn.clientVersion = intern(m.clientVersion);
  conn.clientType = clientTypeOf(m.osName);
}

/**
 * The checks every handshake passes (mpush-wire §5): a deviceId and sound keys, else ERROR and
 * close; the same deviceId again on this connection, ERROR 102 and the connection stays.
 */
function acceptable(conn: Connection, sessionId: number, deviceId: string, keysOk: boolean): boolean {
  if (deviceId === '' || !keysOk) {
    replyError(
      conn,
      Command.HANDSHAKE,
      sessionId,
      ErrorCode.UNKNOWN,
      'invalid handshake',
      Disconnect.BAD_HANDSHAKE,
    );
    return false;
  }
  if (conn.handshaked && conn.deviceId === deviceId) {
    replyError(conn, Command.HANDSHAKE, sessionId, ErrorCode.REPEAT_HANDSHAKE, 'repeat handshake');
    return false;
  }
  return true;
}

/**
 * HANDSHAKE on the binary protocol (mpush-wire §5): checks the keys, answers HandshakeOk
 * encrypted with AES(clientKey, iv), then switches to AES(clientKey XOR serverKey, iv) and
 * stores the session for fast connect.
 */
export function handleHandshake(
  ctx: HandlerContext,
  conn: Connection,
  sessionId: number,
  m: HandshakeMessage,
): void {
  if (!acceptable(conn, sessionId, m.deviceId, m.iv.length === 16 && m.clientKey.length === 16)) return;
  const serverKey = randomKey();
  const sessionKey = mixKey(m.clientKey, serverKey);
  const heartbeat = negotiateHeartbeat(ctx, m.maxHeartbeat);
  const now = Date.now();
  const expireTime = now + ctx.config.session.expireMs;
  const id = sessionIdOf(m.deviceId, now);

  conn.cipher = new AesCipher(m.clientKey, m.iv);
  conn.send({ cmd: Command.HANDSHAKE, sessionId, body: { serverKey, heartbeat, sessionId: id, expireTime } });
  conn.cipher = new AesCipher(sessionKey, m.iv);
  identify(ctx, conn, m);
  conn.sessionId = id;
  conn.startHeartbeat(heartbeat);
  ctx.stats.handshakes++;
  ctx.sessions
    .set(
      id,
      {
        deviceId: m.deviceId,
        osName: conn.osName,
        osVersion: conn.osVersion,
        clientVersion: conn.clientVersion,
        sessionKey: sessionKey.toString('hex'),
        iv: m.iv.toString('hex'),
        expireTime,
      },
      ctx.config.session.expireMs,
    )
    .catch((err: Error) => ctx.log.warn('session store write failed', { err: err.message }));
}

/** HANDSHAKE on the WebSocket JSON protocol: no keys, no session (mpush-wire §10). */
export function handleJsonHandshake(
  ctx: HandlerContext,
  conn: Connection,
  sessionId: number,
  m: Pick<HandshakeMessage, 'deviceId' | 'osName' | 'osVersion' | 'clientVersion' | 'maxHeartbeat'>,
): void {
  if (!acceptable(conn, sessionId, m.deviceId, true)) return;
  const heartbeat = negotiateHeartbeat(ctx, m.maxHeartbeat);
  const now = Date.now();
  const id = sessionIdOf(m.deviceId, now);
  identify(ctx, conn, m);
  conn.sessionId = id;
  conn.send({
    cmd: Command.HANDSHAKE,
    sessionId,
    body: {
      serverKey: Buffer.alloc(0),
      heartbeat,
      sessionId: id,
      expireTime: now + ctx.config.session.expireMs,
    },
  });
  conn.startHeartbeat(heartbeat);
  ctx.stats.handshakes++;
}

export { identify };
