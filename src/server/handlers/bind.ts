import type { Connection } from '../../connection/index.js';
import { verifyBindToken } from '../../crypto/bind-token.js';
import { type BindUserMessage, Command, ErrorCode } from '../../protocol/index.js';
import type { HandlerContext } from '../handler-context.js';
import { replyError, replyOk } from './reply.js';

/** BIND and UNBIND must name a user, else ERROR and the connection stays (the dispatcher checked the handshake). */
function accepted(conn: Connection, cmd: number, sessionId: number, m: BindUserMessage): boolean {
  if (m.userId === '') {
    replyError(conn, cmd, sessionId, ErrorCode.UNKNOWN, 'invalid param');
    return false;
  }
  return true;
}

/**
 * BIND (mpush-wire §8): one live connection per (user, client type). A second device of the same
 * type displaces the first, which gets a KICK and is unbound but left connected, as MPush does:
 * closing it would make MPush SDKs reconnect, re-bind and kick the new device back, for ever.
 *
 * The OK waits for the context's {@link HandlerContext.bindRecorder} (the cluster's route), as
 * MPush's reply waits for its Redis write. That wait orders a device's bindings across nodes with
 * no clock: a device opens its next connection only after this OK, so the next node's route write
 * starts after this one is written. Answered first, a node slow to reach Redis could write this
 * route after the device had moved on and bound elsewhere, replacing the newer route and kicking the
 * device's live connection.
 */
export function handleBind(
  ctx: HandlerContext,
  conn: Connection,
  sessionId: number,
  m: BindUserMessage,
): void {
  if (!accepted(conn, Command.BIND, sessionId, m)) return;
  const secret = ctx.config.auth.bindSecret;
  if (secret) {
    const check = verifyBindToken(secret, m.userId, m.data);
    if (!check.ok) {
      ctx.stats.bindsRefused++;
      return replyError(conn, Command.BIND, sessionId, ErrorCode.UNKNOWN, `bind token ${check.reason}`);
    }
  }
  if (conn.userId === m.userId && ctx.router.get(m.userId, conn.clientType) === conn) {
    conn.tags = m.tags; // re-bind of the same user: refresh tags only
    return replyOk(conn, Command.BIND, sessionId, `${m.userId},${conn.clientType}`);
  }
  if (conn.userId !== '') ctx.unbind(conn);
  conn.userId = m.userId;
  conn.tags = m.tags;
  const previous = ctx.router.bind(conn);
  if (previous) ctx.kick(previous);
  ctx.stats.binds++;
  if (ctx.log.enabled('debug')) {
    ctx.log.debug('bound', { conn: conn.id, userId: m.userId, clientType: conn.clientType });
  }
  const recorded = ctx.bindRecorder?.(conn);
  if (recorded === undefined) return bound(ctx, conn, sessionId, m.userId);
  void recorded.then(() => {
    if (ctx.router.get(m.userId, conn.clientType) === conn) return bound(ctx, conn, sessionId, m.userId);
    // Closed meanwhile: nobody to answer (its unbind came after the record). Displaced meanwhile (a
    // KICK, an UNBIND or another BIND on this connection): this bind no longer holds, so no OK.
    if (!conn.closed) replyError(conn, Command.BIND, sessionId, ErrorCode.UNKNOWN, 'bind superseded');
  });
}

/** The binding holds: OK, then the rest of the node hears of it (inbox replay, webhooks). */
function bound(ctx: HandlerContext, conn: Connection, sessionId: number, userId: string): void {
  replyOk(conn, Command.BIND, sessionId, `${userId},${conn.clientType}`);
  ctx.events.emit('online', conn);
}

/** UNBIND: drops the binding if this connection holds it; answered OK either way (idempotent). */
export function handleUnbind(
  ctx: HandlerContext,
  conn: Connection,
  sessionId: number,
  m: BindUserMessage,
): void {
  if (!accepted(conn, Command.UNBIND, sessionId, m)) return;
  if (conn.userId === m.userId) ctx.unbind(conn);
  replyOk(conn, Command.UNBIND, sessionId, `${m.userId},${conn.clientType}`);
}
