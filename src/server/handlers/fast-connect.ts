import type { Connection } from '../../connection/index.js';
import { AesCipher } from '../../crypto/index.js';
import { Command, ErrorCode, type FastConnectMessage } from '../../protocol/index.js';
import type { HandlerContext } from '../handler-context.js';
import { identify, negotiateHeartbeat } from './handshake.js';
import { replyError } from './reply.js';

/**
 * FAST_CONNECT (mpush-wire §6): resumes a stored session's cipher. Unknown or expired → 103,
 * another device's session → 104; the connection stays open for a full handshake either way.
 * The store lookup is asynchronous: packets that arrive meanwhile are held by the dispatcher.
 */
export async function handleFastConnect(
  ctx: HandlerContext,
  conn: Connection,
  sessionId: number,
  m: FastConnectMessage,
): Promise<void> {
  const session = m.sessionId ? await ctx.sessions.get(m.sessionId) : undefined;
  if (conn.closed) return;
  if (!session || session.expireTime <= Date.now()) {
    ctx.stats.fastConnectsRefused++;
    return replyError(conn, Command.FAST_CONNECT, sessionId, ErrorCode.SESSION_EXPIRED, 'session expired');
  }
  if (session.deviceId !== m.deviceId) {
    ctx.stats.fastConnectsRefused++;
    return replyError(conn, Command.FAST_CONNECT, sessionId, ErrorCode.INVALID_DEVICE, 'invalid device');
  }
  const heartbeat = negotiateHeartbeat(ctx, m.maxHeartbeat);
  conn.send({ cmd: Command.FAST_CONNECT, sessionId, body: { heartbeat } });
  conn.cipher = new AesCipher(Buffer.from(session.sessionKey, 'hex'), Buffer.from(session.iv, 'hex'));
  identify(ctx, conn, session);
  conn.sessionId = m.sessionId;
  conn.startHeartbeat(heartbeat);
  ctx.stats.fastConnects++;
}
