import type { Connection, DisconnectReason } from '../../connection/index.js';
import { Command } from '../../protocol/index.js';

/** Sends an ERROR (always unencrypted, mpush-wire §12) and, when given a reason, closes after it. */
export function replyError(
  conn: Connection,
  cmd: number,
  sessionId: number,
  code: number,
  reason: string,
  close?: DisconnectReason,
): void {
  conn.send({ cmd: Command.ERROR, sessionId, body: { cmd, code, reason, data: '' } });
  if (close) conn.close(close);
}

/** Sends an OK (always unencrypted). */
export function replyOk(conn: Connection, cmd: number, sessionId: number, data = ''): void {
  conn.send({ cmd: Command.OK, sessionId, body: { cmd, code: 0, data } });
}
