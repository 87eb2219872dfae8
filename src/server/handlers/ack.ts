import type { Connection } from '../../connection/index.js';
import { Command, Flags } from '../../protocol/index.js';
import type { HandlerContext } from '../handler-context.js';

/**
 * ACK from a device (mpush-wire §9): its sessionId is the pushed packet's; the ack tracker
 * matches on it and on the connection. The dispatcher has checked the handshake.
 */
export function handleAck(ctx: HandlerContext, conn: Connection, sessionId: number): void {
  ctx.stats.acks++;
  ctx.ackListener?.(conn, sessionId);
}

/**
 * PUSH from a device (a client-originated message, mpush-wire §9): handed to listeners, and
 * acked when the device asked for an ack (MPush acks AUTO_ACK; BIZ_ACK is acked once listeners
 * have run). The dispatcher has checked the handshake.
 */
export function handleDevicePush(
  ctx: HandlerContext,
  conn: Connection,
  sessionId: number,
  flags: number,
  content: Buffer,
): void {
  ctx.stats.devicePushes++;
  ctx.events.emit('devicePush', conn, content, sessionId);
  if (flags & (Flags.AUTO_ACK | Flags.BIZ_ACK)) conn.send({ cmd: Command.ACK, sessionId });
}
