import { type Connection, Disconnect } from '../../connection/index.js';
import { Command, Flags } from '../../protocol/index.js';
import type { ConnectionServer } from '../connection-server.js';
import { replyError } from './reply.js';

/** ACK from a device: its sessionId is the pushed packet's; the ack tracker matches on it. */
export function handleAck(server: ConnectionServer, conn: Connection, sessionId: number): void {
  if (!conn.handshaked)
    return replyError(conn, Command.ACK, sessionId, 0, 'not handshake', Disconnect.NOT_HANDSHAKED);
  server.stats.acks++;
  server.ackListener?.(conn, sessionId);
}

/**
 * PUSH from a device (a client-originated message): handed to listeners, and acked when the
 * device asked for an ack (MPush acks AUTO_ACK; BIZ_ACK is acked once listeners have run).
 */
export function handleDevicePush(
  server: ConnectionServer,
  conn: Connection,
  sessionId: number,
  flags: number,
  content: Buffer,
): void {
  if (!conn.handshaked)
    return replyError(conn, Command.PUSH, sessionId, 0, 'not handshake', Disconnect.NOT_HANDSHAKED);
  server.stats.devicePushes++;
  server.events.emit('devicePush', conn, content, sessionId);
  if (flags & (Flags.AUTO_ACK | Flags.BIZ_ACK)) conn.send({ cmd: Command.ACK, sessionId });
}
