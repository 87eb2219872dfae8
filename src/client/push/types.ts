/** Where one device of a user is: its client type and the gateway of its node. */
export interface RouteEntry {
  clientType: number;
  host: string;
  port: number;
  connId: string;
}

/** Ack models (MPush's names): when a push counts as delivered. */
export type AckModel = 'NO_ACK' | 'AUTO_ACK' | 'BIZ_ACK';

/** The four outcomes of a push request, with MPush's codes. */
export const ResultCode = { success: 1, failure: 2, offline: 3, timeout: 4 } as const;
export type ResultName = keyof typeof ResultCode;

/** Where the time of one request went (ms since epoch). */
export interface Timeline {
  begin: number;
  'check-gateway-conn'?: number;
  'send-to-gateway-begin'?: number;
  'send-to-gateway-end'?: number;
  end?: number;
}

/** The result of one request: one (user, client type). */
export interface PushResult {
  userId: string;
  /** -1 when the user had no route at all (or its routes could not be had in time). */
  clientType: number;
  result: ResultName;
  code: (typeof ResultCode)[ResultName];
  /** Why, for anything but success. */
  reason?: string;
  /** Gateway the request went to last. */
  gateway?: string;
  redirects: number;
  timeline: Timeline;
  /** The node's own time points (received, written, acked), on success. */
  timePoints?: Record<string, number>;
  /**
   * The message's id: the caller's `msgId` (or `msg.msgId`), else generated. One per send() call,
   * shared by every result of it (every user and device type of a batch).
   */
  messageId: string;
  /** The message was kept in the user's inbox for later (asked with `store: true`). */
  stored: boolean;
  /** Why a `store: true` push could not be kept (the result's outcome is the live one). */
  storeError?: string;
}

/**
 * Called once per result, as each request ends (not when the whole call ends), after the I/O that
 * ended it: a callback that throws is reported to the sender's logger and changes nothing else; a
 * slow one delays later callbacks, never the socket that read the reply.
 */
export interface PushCallback {
  onResult?(result: PushResult): void;
  onSuccess?(result: PushResult): void;
  onFailure?(result: PushResult): void;
  onOffline?(result: PushResult): void;
  onTimeout?(result: PushResult): void;
}

/**
 * Where the push client reports what it cannot return to a caller: a gateway connection lost, a
 * reply it could not read, a callback that threw. `src/log.ts`'s Logger fits; the default writes
 * warnings and errors to stderr.
 */
export interface PushLogger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  debug?(msg: string, fields?: Record<string, unknown>): void;
}

/** The default {@link PushLogger}: one line per event on stderr, debug dropped. */
export const stderrLogger: PushLogger = {
  error: (msg, fields) => process.stderr.write(logLine('ERROR', msg, fields)),
  warn: (msg, fields) => process.stderr.write(logLine('WARN', msg, fields)),
};

function logLine(level: string, msg: string, fields?: Record<string, unknown>): string {
  return `${new Date().toISOString()} ${level.padEnd(5)} push-sender: ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`;
}

/** A message sent as JSON (`{msgType, msgId, content}`), MPush's PushMsg. */
export interface PushMsg {
  msgType?: number;
  msgId?: string;
  content: string;
  [extra: string]: unknown;
}

/** What to push, to whom, and how (MPush's PushContext). */
export interface PushContext {
  content?: Buffer | string;
  msg?: PushMsg;
  userId?: string;
  userIds?: string[];
  /** To every connected device (optionally narrowed by tags or condition). */
  broadcast?: boolean;
  tags?: string[];
  condition?: string;
  ackModel?: AckModel;
  /**
   * ms; default the sender's `timeout` (3000). Bounds the whole call, route lookup included: every
   * result is in by then. For a broadcast it is the node's per-device ack timeout instead (the
   * broadcast itself is bounded by the sender's `broadcastTimeoutMs`).
   */
  timeout?: number;
  /**
   * The message's id (1 to 128 characters), named in every result; generated when absent. Sent as
   * `msg`, the PushMsg JSON carries it as `msgId` (so a `msg.msgId` counts as this; the two must
   * agree). Unicast and batch pushes only.
   */
  msgId?: string;
  /**
   * Keep the message in the user's inbox when a device is offline (or the user has no route at
   * all) or does not ack in time; it is delivered when a device of that type binds. The result
   * says `stored`.
   */
  store?: boolean;
  /** Seconds a stored message waits (the node's `inbox.defaultTtlSeconds`); only with `store`. */
  ttl?: number;
  /** Broadcast task id; generated when absent. */
  taskId?: string;
  /** Broadcast rate, devices per second per node (0: node default). */
  broadcastRate?: number;
  /** Most devices a broadcast reaches per node (0: no limit). */
  broadcastMax?: number;
  callback?: PushCallback;
}

/** A message's receipt ({@link PushSender.status}; the same JSON as GET /api/messages/:id). */
export type { DeviceReceipt, MessageReceipt, ReceiptState, UserReceipt } from '../../protocol/index.js';

/** Why {@link PushSender.status} rejected. */
export class MessageStatusError extends Error {
  override readonly name = 'MessageStatusError';
  constructor(
    /** `unknown`: no such message (never stored, or its receipt expired); `timeout`; `failure`. */
    readonly kind: 'unknown' | 'timeout' | 'failure',
    message: string,
  ) {
    super(message);
  }
}

/** Counts of a broadcast across nodes. */
export interface BroadcastResult {
  taskId: string;
  result: 'success' | 'failure';
  reason?: string;
  matched: number;
  sent: number;
  acked: number;
  failed: number;
  nodes: Array<{
    gateway: string;
    status: string;
    matched: number;
    sent: number;
    acked: number;
    failed: number;
    error?: string;
  }>;
}
