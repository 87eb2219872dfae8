/** Machine codes of failures the device SDKs raise by themselves (not sent by the server). */
export type DeviceClientErrorCode =
  /** No reply within the request timeout. */
  | 'MPUSH_ERR_TIMEOUT'
  /** The client was closed by the application. */
  | 'MPUSH_ERR_CLOSED'
  /** The connection dropped before the reply came. */
  | 'MPUSH_ERR_DISCONNECTED'
  /** The request needs a handshaken connection and there is none. */
  | 'MPUSH_ERR_NOT_CONNECTED'
  /** The server refused the handshake, or answered it with something unreadable. */
  | 'MPUSH_ERR_HANDSHAKE'
  /** The server sent bytes this client cannot decode (bad frame, cipher, zlib, body). */
  | 'MPUSH_ERR_PROTOCOL'
  /** The connection or handshake did not complete in time. */
  | 'MPUSH_ERR_CONNECT_TIMEOUT'
  /** No byte was read for two heartbeats: the connection is considered dead. */
  | 'MPUSH_ERR_HEARTBEAT_TIMEOUT'
  /** The allocator (`allocUrl`) failed, timed out, or answered something that is not `host:port,…`. */
  | 'MPUSH_ERR_ALLOC';

/** A failure detected by the SDK itself; branch on {@link DeviceClientError.code}. */
export class DeviceClientError extends Error {
  override readonly name = 'DeviceClientError';
  readonly code: DeviceClientErrorCode;

  constructor(code: DeviceClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * The server answered a request with an ERROR packet (mpush-wire §3, §4).
 * `code` is the MPush error code (e.g. 103 SESSION_EXPIRED), `cmd` the command it answers.
 */
export class ServerReplyError extends Error {
  override readonly name = 'ServerReplyError';
  /** MPush error code (mpush-wire §4). */
  readonly code: number;
  /** The server's reason text. */
  readonly reason: string;
  /** The command the error answers. */
  readonly cmd: number;
  /** The error's data field. */
  readonly data: string;

  constructor(cmd: number, code: number, reason: string, data: string) {
    super(`server error ${code} for command ${cmd}${reason ? `: ${reason}` : ''}`);
    this.cmd = cmd;
    this.code = code;
    this.reason = reason;
    this.data = data;
  }
}
