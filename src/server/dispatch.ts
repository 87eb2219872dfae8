import { type Connection, Disconnect } from '../connection/index.js';
import { CryptoError } from '../crypto/index.js';
import {
  BindUserCodec,
  Command,
  ErrorCode,
  FastConnectCodec,
  HandshakeCodec,
  type JsonPacket,
  jsonIntField,
  jsonStringField,
  type Packet,
  ProtocolError,
} from '../protocol/index.js';
import type { ConnectionServer } from './connection-server.js';
import { handleAck, handleDevicePush } from './handlers/ack.js';
import { handleBind, handleUnbind } from './handlers/bind.js';
import { handleFastConnect } from './handlers/fast-connect.js';
import { handleHandshake, handleJsonHandshake } from './handlers/handshake.js';
import { replyError } from './handlers/reply.js';

/** Packets held while an asynchronous handler (fast connect) runs, at most limits.fastConnectQueue. */
const held = new WeakMap<Connection, Packet[]>();

/** Bad input: an ERROR naming it, then close only this connection (mpush-wire §12: ERROR 100). */
export function rejectInput(
  server: ConnectionServer,
  conn: Connection,
  cmd: number,
  sessionId: number,
  err: Error,
): void {
  server.stats.protocolErrors++;
  server.log.debug('bad input', {
    conn: conn.id,
    remote: conn.transport.remoteAddress,
    cmd,
    err: err.message,
  });
  const code =
    err instanceof ProtocolError && err.errorCode !== ErrorCode.UNKNOWN
      ? err.errorCode
      : ErrorCode.DISPATCH_ERROR;
  replyError(conn, cmd, sessionId, code, err.message, Disconnect.PROTOCOL_ERROR);
}

/** A command with no handler: ERROR 101 and close (mpush-wire §2). */
function unsupported(server: ConnectionServer, conn: Connection, cmd: number, sessionId: number): void {
  server.stats.unsupported++;
  replyError(
    conn,
    cmd,
    sessionId,
    ErrorCode.UNSUPPORTED_CMD,
    'unsupported command',
    Disconnect.UNSUPPORTED_CMD,
  );
}

/** A handler threw: bad input closes with its ERROR; anything else is ours, ERROR 100 and close. */
function handlerFailed(
  server: ConnectionServer,
  conn: Connection,
  cmd: number,
  sessionId: number,
  err: unknown,
): void {
  if (isBadInput(err)) return rejectInput(server, conn, cmd, sessionId, err);
  server.log.error('handler failed', { cmd, err: (err as Error).stack });
  replyError(conn, cmd, sessionId, ErrorCode.DISPATCH_ERROR, 'internal error', Disconnect.DISPATCH_ERROR);
}

function isBadInput(err: unknown): err is ProtocolError | CryptoError {
  return err instanceof ProtocolError || err instanceof CryptoError;
}

/** The binary protocol: one switch, one handler per command. */
export function dispatchPacket(server: ConnectionServer, conn: Connection, p: Packet): void {
  const queue = held.get(conn);
  if (queue) {
    if (queue.length >= server.config.limits.fastConnectQueue)
      return rejectInput(server, conn, p.cmd, p.sessionId, new Error('too many packets during fast connect'));
    // The body may be a view of a chunk the socket reuses only after we return: keep a copy.
    queue.push({ ...p, body: Buffer.from(p.body) });
    return;
  }
  try {
    switch (p.cmd) {
      case Command.HEARTBEAT:
        conn.sendHeartbeat();
        return;
      case Command.HANDSHAKE:
        if (!server.takeHandshakeToken(conn, p.sessionId)) return;
        return handleHandshake(server, conn, p.sessionId, HandshakeCodec.decode(conn.openBody(p)));
      case Command.FAST_CONNECT: {
        if (!server.takeHandshakeToken(conn, p.sessionId)) return;
        const m = FastConnectCodec.decode(conn.openBody(p));
        held.set(conn, []);
        handleFastConnect(server, conn, p.sessionId, m)
          .catch((err: Error) => {
            server.log.warn('fast connect failed', { err: err.message });
            if (!conn.closed)
              replyError(
                conn,
                Command.FAST_CONNECT,
                p.sessionId,
                ErrorCode.SESSION_EXPIRED,
                'session store unavailable',
              );
          })
          .finally(() => releaseHeld(server, conn));
        return;
      }
      case Command.BIND:
        if (!conn.handshaked)
          return handleBind(server, conn, p.sessionId, { userId: '', data: '', tags: '' });
        return handleBind(server, conn, p.sessionId, BindUserCodec.decode(conn.openBody(p)));
      case Command.UNBIND:
        if (!conn.handshaked)
          return handleUnbind(server, conn, p.sessionId, { userId: '', data: '', tags: '' });
        return handleUnbind(server, conn, p.sessionId, BindUserCodec.decode(conn.openBody(p)));
      case Command.ACK:
        return handleAck(server, conn, p.sessionId);
      case Command.PUSH:
        if (!conn.handshaked) return handleDevicePush(server, conn, p.sessionId, p.flags, p.body);
        return handleDevicePush(server, conn, p.sessionId, p.flags, conn.openBody(p));
      default:
        return unsupported(server, conn, p.cmd, p.sessionId);
    }
  } catch (err) {
    handlerFailed(server, conn, p.cmd, p.sessionId, err);
  }
}

function releaseHeld(server: ConnectionServer, conn: Connection): void {
  const queue = held.get(conn);
  held.delete(conn);
  if (!queue) return;
  for (const p of queue) {
    if (conn.closed) return;
    dispatchPacket(server, conn, p);
  }
}

/** MPush's WebSocket JSON protocol (mpush-wire §10). */
export function dispatchJson(server: ConnectionServer, conn: Connection, p: JsonPacket): void {
  const b = p.body;
  try {
    switch (p.cmd) {
      case Command.HEARTBEAT:
        return;
      case Command.HANDSHAKE:
        if (!server.takeHandshakeToken(conn, p.sessionId)) return;
        return handleJsonHandshake(server, conn, p.sessionId, {
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
          ? handleBind(server, conn, p.sessionId, m)
          : handleUnbind(server, conn, p.sessionId, m);
      }
      case Command.ACK:
        return handleAck(server, conn, p.sessionId);
      case Command.PUSH:
        return handleDevicePush(
          server,
          conn,
          p.sessionId,
          p.flags,
          Buffer.from(jsonStringField(b, 'content'), 'utf8'),
        );
      default:
        return unsupported(server, conn, p.cmd, p.sessionId);
    }
  } catch (err) {
    handlerFailed(server, conn, p.cmd, p.sessionId, err);
  }
}
