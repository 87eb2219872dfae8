import type { Connection } from '../connection/index.js';
import {
  BindUserCodec,
  Command,
  ErrorCode,
  type ErrorReply,
  errorReply,
  FastConnectCodec,
  HandshakeCodec,
  HttpRequestCodec,
  type JsonPacket,
  jsonIntField,
  jsonStringField,
  MPushError,
  type Packet,
  ProtocolError,
} from '../protocol/index.js';
import type { HandlerContext } from './handler-context.js';
import { handleAck, handleDevicePush } from './handlers/ack.js';
import { handleBind, handleUnbind } from './handlers/bind.js';
import { handleFastConnect } from './handlers/fast-connect.js';
import { handleHandshake, handleJsonHandshake } from './handlers/handshake.js';
import { handleHttpProxy } from './handlers/http-proxy.js';
import { replyError } from './handlers/reply.js';

/**
 * Commands a device may send only once its handshake (or fast connect) is done: the ones that
 * act for a device identity. MPush answers them, before a handshake, with ERROR (code 0,
 * "not handshake") and closes (mpush-wire §12). HTTP_PROXY too: its body is under the session key
 * and a device with no session has nothing to proxy for. HEARTBEAT, HANDSHAKE and FAST_CONNECT are
 * what make the handshake; any other command is unsupported either way (mpush-wire §2).
 */
const NEEDS_HANDSHAKE: ReadonlySet<number> = new Set([
  Command.BIND,
  Command.UNBIND,
  Command.ACK,
  Command.PUSH,
  Command.HTTP_PROXY,
]);

/** The two fixed answers of the dispatcher, from the one error table (built once, not per packet). */
const NOT_HANDSHAKED = errorReply(new ProtocolError('MPUSH_ERR_NOT_HANDSHAKED', 'not handshake'));
const UNSUPPORTED = errorReply(new ProtocolError('MPUSH_ERR_UNKNOWN_COMMAND', 'unsupported command'));

/** The precondition, checked once here so the handlers can assume it. */
function notHandshaked(conn: Connection, cmd: number, sessionId: number): void {
  answer(conn, cmd, sessionId, NOT_HANDSHAKED);
}

/** Sends the ERROR an error reply names and closes with its reason. */
function answer(conn: Connection, cmd: number, sessionId: number, r: ErrorReply): void {
  replyError(conn, cmd, sessionId, r.code, r.reason, r.disconnect);
}

/** Bad input: an ERROR naming it, then close only this connection (mpush-wire §12: ERROR 100). */
export function rejectInput(
  ctx: HandlerContext,
  conn: Connection,
  cmd: number,
  sessionId: number,
  err: MPushError,
): void {
  ctx.stats.protocolErrors++;
  ctx.log.debug('bad input', {
    conn: conn.id,
    remote: conn.transport.remoteAddress,
    cmd,
    err: err.message,
  });
  answer(conn, cmd, sessionId, errorReply(err));
}

/** A command with no handler: ERROR 101 and close (mpush-wire §2). */
function unsupported(ctx: HandlerContext, conn: Connection, cmd: number, sessionId: number): void {
  ctx.stats.unsupported++;
  answer(conn, cmd, sessionId, UNSUPPORTED);
}

/**
 * A handler threw: bad input closes with its ERROR; anything else is ours, ERROR 100
 * (DISPATCH_ERROR, mpush-wire §4) and close.
 */
function handlerFailed(
  ctx: HandlerContext,
  conn: Connection,
  cmd: number,
  sessionId: number,
  err: unknown,
): void {
  if (err instanceof MPushError) return rejectInput(ctx, conn, cmd, sessionId, err);
  ctx.log.error('handler failed', { cmd, err: (err as Error).stack });
  answer(conn, cmd, sessionId, errorReply(err));
}

/**
 * The binary protocol (mpush-wire §1–§9): one switch, one handler per command. The handshake
 * precondition is checked before the body is decrypted or decoded: a device with no session
 * key has nothing to decrypt it with.
 */
export function dispatchPacket(ctx: HandlerContext, conn: Connection, p: Packet): void {
  const held = conn.held;
  if (held) {
    // A fast connect is being looked up (mpush-wire §6): what follows it waits, in order.
    if (held.length >= ctx.config.limits.fastConnectQueue)
      return rejectInput(
        ctx,
        conn,
        p.cmd,
        p.sessionId,
        new ProtocolError('MPUSH_ERR_QUEUE_FULL', 'too many packets during fast connect'),
      );
    // The body is the decoder's own copy (Connection decodes with copyBodies): kept as it is.
    held.push(p);
    return;
  }
  if (!conn.handshaked && NEEDS_HANDSHAKE.has(p.cmd)) return notHandshaked(conn, p.cmd, p.sessionId);
  try {
    switch (p.cmd) {
      case Command.HEARTBEAT: // mpush-wire §7: echoed
        conn.sendHeartbeat();
        return;
      case Command.HANDSHAKE: // mpush-wire §5
        if (!ctx.takeHandshakeToken(conn, p.sessionId)) return;
        return handleHandshake(ctx, conn, p.sessionId, HandshakeCodec.decode(conn.openBody(p)));
      case Command.FAST_CONNECT: {
        // mpush-wire §6
        if (!ctx.takeHandshakeToken(conn, p.sessionId)) return;
        const m = FastConnectCodec.decode(conn.openBody(p));
        conn.held = [];
        handleFastConnect(ctx, conn, p.sessionId, m)
          .catch((err: Error) => {
            ctx.log.warn('fast connect failed', { err: err.message });
            if (!conn.closed)
              replyError(
                conn,
                Command.FAST_CONNECT,
                p.sessionId,
                ErrorCode.SESSION_EXPIRED,
                'session store unavailable',
              );
          })
          .finally(() => releaseHeld(ctx, conn));
        return;
      }
      case Command.BIND: // mpush-wire §8
        return handleBind(ctx, conn, p.sessionId, BindUserCodec.decode(conn.openBody(p)));
      case Command.UNBIND:
        return handleUnbind(ctx, conn, p.sessionId, BindUserCodec.decode(conn.openBody(p)));
      case Command.ACK: // mpush-wire §9: the body is empty, the sessionId is the push's
        return handleAck(ctx, conn, p.sessionId);
      case Command.PUSH: // mpush-wire §9: a client-originated message
        return handleDevicePush(ctx, conn, p.sessionId, p.flags, conn.openBody(p));
      case Command.HTTP_PROXY: // mpush-wire §11
        return handleHttpProxy(ctx.httpProxy, conn, p.sessionId, HttpRequestCodec.decode(conn.openBody(p)));
      default:
        return unsupported(ctx, conn, p.cmd, p.sessionId);
    }
  } catch (err) {
    handlerFailed(ctx, conn, p.cmd, p.sessionId, err);
  }
}

/** Replays what arrived during the fast connect, in order, until one of them closes the connection. */
function releaseHeld(ctx: HandlerContext, conn: Connection): void {
  const queue = conn.held;
  conn.held = null;
  if (!queue) return;
  for (const p of queue) {
    if (conn.closed) return;
    dispatchPacket(ctx, conn, p);
  }
}

/**
 * MPush's WebSocket JSON protocol (mpush-wire §10): the same commands, fields by name, no
 * cipher and no fast connect. The same handshake precondition, checked before the fields are read.
 */
export function dispatchJson(ctx: HandlerContext, conn: Connection, p: JsonPacket): void {
  if (!conn.handshaked && NEEDS_HANDSHAKE.has(p.cmd)) return notHandshaked(conn, p.cmd, p.sessionId);
  const b = p.body;
  try {
    switch (p.cmd) {
      case Command.HEARTBEAT:
        return;
      case Command.HANDSHAKE:
        if (!ctx.takeHandshakeToken(conn, p.sessionId)) return;
        return handleJsonHandshake(ctx, conn, p.sessionId, {
          deviceId: jsonStringField(b, 'deviceId'),
          osName: jsonStringField(b, 'osName') || 'web',
          osVersion: jsonStringField(b, 'osVersion'),
          clientVersion: jsonStringField(b, 'clientVersion'),
          maxHeartbeat: jsonIntField(b, 'maxHeartbeat', 0),
        });
      case Command.BIND:
      case Command.UNBIND: {
        const m = {
          userId: jsonStringField(b, 'userId'),
          data: jsonStringField(b, 'data'),
          tags: jsonStringField(b, 'tags'),
        };
        return p.cmd === Command.BIND
          ? handleBind(ctx, conn, p.sessionId, m)
          : handleUnbind(ctx, conn, p.sessionId, m);
      }
      case Command.ACK:
        return handleAck(ctx, conn, p.sessionId);
      case Command.PUSH:
        return handleDevicePush(
          ctx,
          conn,
          p.sessionId,
          p.flags,
          Buffer.from(jsonStringField(b, 'content'), 'utf8'),
        );
      case Command.HTTP_PROXY: // beyond MPush's web clients: the HttpRequest fields by name, a text body
        return handleHttpProxy(ctx.httpProxy, conn, p.sessionId, {
          method: jsonIntField(b, 'method', 0),
          uri: jsonStringField(b, 'uri'),
          headers: jsonStringField(b, 'headers'),
          body: Buffer.from(jsonStringField(b, 'body'), 'utf8'),
        });
      default:
        return unsupported(ctx, conn, p.cmd, p.sessionId);
    }
  } catch (err) {
    handlerFailed(ctx, conn, p.cmd, p.sessionId, err);
  }
}
