/**
 * Why a connection was closed: a typed catalogue, each with a WebSocket close code and whether
 * the device should reconnect. Logged and counted by reason.
 */
export interface DisconnectReason {
  readonly name: string;
  /** WebSocket close code (4000–4999 are ours). */
  readonly wsCode: number;
  readonly reconnect: boolean;
}

function reason(name: string, wsCode: number, reconnect: boolean): DisconnectReason {
  return Object.freeze({ name, wsCode, reconnect });
}

export const Disconnect = {
  /** The device closed its side. */
  REMOTE_CLOSED: reason('remote-closed', 1000, true),
  /** The transport failed (reset, write error). */
  TRANSPORT_ERROR: reason('transport-error', 1011, true),
  /** The node is shutting down. */
  SHUTDOWN: reason('shutdown', 1001, true),
  /** No handshake within `limits.handshakeTimeoutMs`. */
  HANDSHAKE_TIMEOUT: reason('handshake-timeout', 4001, true),
  /** Too many heartbeat read timeouts in a row. */
  HEARTBEAT_TIMEOUT: reason('heartbeat-timeout', 4002, true),
  /** Outbound bytes queued passed the byte bound (`limits.maxOutboundBytes`). */
  SLOW_READER: reason('slow-reader', 4003, true),
  /** Undecodable input: bad frame, bad body, bad cipher text, decompression bomb. */
  PROTOCOL_ERROR: reason('protocol-error', 4004, false),
  /** A command with no handler (mpush-wire §2). */
  UNSUPPORTED_CMD: reason('unsupported-command', 4005, false),
  /** The handshake was refused (bad keys or fields). */
  BAD_HANDSHAKE: reason('bad-handshake', 4006, false),
  /** A command that needs a handshake came before one. */
  NOT_HANDSHAKED: reason('not-handshaked', 4007, true),
  /** `limits.maxConnections` reached. */
  TOO_MANY_CONNECTIONS: reason('too-many-connections', 4008, true),
  /** `limits.handshakesPerSecond` exceeded. */
  HANDSHAKE_RATE: reason('handshake-rate', 4009, true),
  /** The handler threw. */
  DISPATCH_ERROR: reason('dispatch-error', 4010, true),
  /** A backpressured connection did not drain within `limits.drainTimeoutMs`. */
  DRAIN_TIMEOUT: reason('drain-timeout', 4011, true),
} as const;

export type DisconnectName = keyof typeof Disconnect;
