/**
 * Why a connection was closed: a typed catalogue, each with a WebSocket close code and whether
 * the device should reconnect. Logged and counted by reason on the server; read by the device SDKs
 * (`client/device/device-session.ts`), which reconnect with backoff only after a reason that says
 * so (centrifuge `disconnect.go`: the code tells the client whether coming back can help).
 */
export interface DisconnectReason {
  /** Kebab-case name: the log's and the counters' label, and the WebSocket close reason. */
  readonly name: string;
  /** WebSocket close code (4000–4999 are ours). */
  readonly wsCode: number;
  /**
   * True when coming back may work (the network, the node or a limit of the moment); false when
   * the same client would be closed the same way again (bad input, refused credentials, displaced).
   */
  readonly reconnect: boolean;
}

function reason(name: string, wsCode: number, reconnect: boolean): DisconnectReason {
  return Object.freeze({ name, wsCode, reconnect });
}

/** The catalogue: every reason a connection is closed for, by name. */
export const Disconnect = {
  /** The peer closed its side (the device, as the server sees it; the server, as a device sees it). */
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
  /**
   * Another device of the same client type bound the user (mpush-wire §8). The server sends KICK and
   * keeps the connection, as MPush does (§12); a device SDK ends its session with this reason: it
   * does not reconnect (re-binding would kick the other device back, in a loop).
   */
  KICKED: reason('kicked', 4012, false),
  /** A bind was refused (a bad or expired bind token): the same credentials would be refused again. */
  AUTH_REFUSED: reason('auth-refused', 4013, false),
} as const;

/** The key of a reason in {@link Disconnect}. */
export type DisconnectName = keyof typeof Disconnect;

const BY_WS_CODE: ReadonlyMap<number, DisconnectReason> = new Map(
  Object.values(Disconnect).map((r) => [r.wsCode, r]),
);

/**
 * The catalogue entry of a WebSocket close code, as a device reads the server's close frame.
 * Undefined for a code the catalogue does not name (1006 "abnormal closure": the network went).
 */
export function disconnectByWsCode(code: number): DisconnectReason | undefined {
  return BY_WS_CODE.get(code);
}
