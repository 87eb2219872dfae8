// The one error shape of mpush-ts (ws's `createError`): every bad-input error carries its machine code
// (`MPUSH_ERR_*`), the MPush ErrorCode its ERROR reply sends (mpush-wire §4) and the reason the
// connection is closed with. Each family (protocol here, crypto, conditions) maps its machine codes to
// answers in one table, so the same bad input is answered the same way wherever it is found.

import { ErrorCode } from './command.js';
import { Disconnect, type DisconnectReason } from './disconnect.js';

/** How a peer is answered for one kind of failure. */
export interface ErrorAnswer {
  /** The MPush error code of the ERROR packet (mpush-wire §4). */
  readonly errorCode: number;
  /** Why the connection is closed after that ERROR, on a port that closes on bad input. */
  readonly disconnect: DisconnectReason;
}

/**
 * The answers to bad input. Every machine code of every family maps to one of these (or to a
 * specific one of its own), chosen so that what the device port sends stays what MPush sends.
 */
export const Answer = {
  /**
   * The byte stream cannot be cut into packets (a declared length, a WebSocket text frame that is
   * not a packet). MPush has no code for it: UNKNOWN (-1).
   */
  FRAMING: Object.freeze({ errorCode: ErrorCode.UNKNOWN, disconnect: Disconnect.PROTOCOL_ERROR }),
  /**
   * A framed packet the server cannot accept: a body that does not decode, bad cipher text, a
   * decompression bomb, a bad condition. DISPATCH_ERROR (100), as MPush answers a handshake body
   * that is not valid RSA (mpush-wire §12).
   */
  BAD_INPUT: Object.freeze({ errorCode: ErrorCode.DISPATCH_ERROR, disconnect: Disconnect.PROTOCOL_ERROR }),
} as const satisfies Record<string, ErrorAnswer>;

/**
 * Base class of every error that answers a peer: {@link ProtocolError}, `CryptoError` and, through
 * the same constructor, any other family (conditions). Callers branch on `instanceof` the family
 * and on {@link MPushError.code}, never on the message, which is for humans and may change.
 */
export class MPushError<C extends string = string> extends Error {
  /** `MPUSH_ERR_*` machine code. */
  readonly code: C;
  /** The MPush error code to put in an ERROR packet (mpush-wire §4). */
  readonly errorCode: number;
  /** The reason to close the connection with, when the port closes on this error. */
  readonly disconnect: DisconnectReason;

  /**
   * @param code the machine code.
   * @param message for humans (logs, the ERROR's reason field).
   * @param answer the family's table entry for `code`.
   */
  constructor(code: C, message: string, answer: ErrorAnswer, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.errorCode = answer.errorCode;
    this.disconnect = answer.disconnect;
  }
}

/**
 * Machine codes for protocol failures. Each maps (in {@link PROTOCOL_ANSWERS}) to the MPush error
 * code the connection layer sends in its ERROR packet before it closes the offending connection.
 */
export const ProtocolErrorCodes = {
  /** The header declared a body longer than the configured maximum. */
  MPUSH_ERR_PACKET_TOO_LARGE: 'MPUSH_ERR_PACKET_TOO_LARGE',
  /** The header declared a negative body length. */
  MPUSH_ERR_NEGATIVE_LENGTH: 'MPUSH_ERR_NEGATIVE_LENGTH',
  /** A body field ran past the end of the body. */
  MPUSH_ERR_TRUNCATED: 'MPUSH_ERR_TRUNCATED',
  /** A field length was negative or otherwise impossible. */
  MPUSH_ERR_BAD_LENGTH: 'MPUSH_ERR_BAD_LENGTH',
  /** A string field was not valid UTF-8. */
  MPUSH_ERR_INVALID_UTF8: 'MPUSH_ERR_INVALID_UTF8',
  /** A command code MPush does not define, or one this port has no handler for (mpush-wire §2). */
  MPUSH_ERR_UNKNOWN_COMMAND: 'MPUSH_ERR_UNKNOWN_COMMAND',
  /** A field held a value outside its domain (bad JSON, wrong key size, ...). */
  MPUSH_ERR_BAD_FIELD: 'MPUSH_ERR_BAD_FIELD',
  /** A WebSocket text frame that is not a valid JSON packet. */
  MPUSH_ERR_BAD_JSON_PACKET: 'MPUSH_ERR_BAD_JSON_PACKET',
  /** A command that needs a handshake came before one (mpush-wire §12: "not handshake"). */
  MPUSH_ERR_NOT_HANDSHAKED: 'MPUSH_ERR_NOT_HANDSHAKED',
  /** More packets arrived while a fast connect was pending than `limits.fastConnectQueue` holds. */
  MPUSH_ERR_QUEUE_FULL: 'MPUSH_ERR_QUEUE_FULL',
} as const;

export type ProtocolErrorCode = keyof typeof ProtocolErrorCodes;

/** What each protocol failure is answered with. */
export const PROTOCOL_ANSWERS: Readonly<Record<ProtocolErrorCode, ErrorAnswer>> = Object.freeze({
  MPUSH_ERR_PACKET_TOO_LARGE: Answer.FRAMING,
  MPUSH_ERR_NEGATIVE_LENGTH: Answer.FRAMING,
  MPUSH_ERR_BAD_JSON_PACKET: Answer.FRAMING,
  MPUSH_ERR_TRUNCATED: Answer.BAD_INPUT,
  MPUSH_ERR_BAD_LENGTH: Answer.BAD_INPUT,
  MPUSH_ERR_INVALID_UTF8: Answer.BAD_INPUT,
  MPUSH_ERR_BAD_FIELD: Answer.BAD_INPUT,
  MPUSH_ERR_QUEUE_FULL: Answer.BAD_INPUT,
  MPUSH_ERR_UNKNOWN_COMMAND: Object.freeze({
    errorCode: ErrorCode.UNSUPPORTED_CMD,
    disconnect: Disconnect.UNSUPPORTED_CMD,
  }),
  // MPush answers a bind before the handshake with code 0, which its ErrorCode table does not name.
  MPUSH_ERR_NOT_HANDSHAKED: Object.freeze({ errorCode: 0, disconnect: Disconnect.NOT_HANDSHAKED }),
});

/** A typed decode failure; never thrown for anything but bad input. */
export class ProtocolError extends MPushError<ProtocolErrorCode> {
  override readonly name = 'ProtocolError';

  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, PROTOCOL_ANSWERS[code], options);
  }
}

/** What to send for a failure, and how to close: see {@link errorReply}. */
export interface ErrorReply {
  /** The ERROR packet's code (mpush-wire §4). */
  readonly code: number;
  /** The ERROR packet's reason text. */
  readonly reason: string;
  /** The reason to close the connection with, when the port closes. */
  readonly disconnect: DisconnectReason;
  /** True for an {@link MPushError} (the peer's fault); false for a bug of ours. */
  readonly badInput: boolean;
}

const INTERNAL: ErrorReply = Object.freeze({
  code: ErrorCode.DISPATCH_ERROR,
  reason: 'internal error',
  disconnect: Disconnect.DISPATCH_ERROR,
  badInput: false,
});

/**
 * The one place that turns a failure into an ERROR reply: an {@link MPushError} answers with its own
 * code, message and disconnect reason; anything else is a bug of ours and answers DISPATCH_ERROR
 * (100) with "internal error" (its message may hold internals, and is for the log).
 */
export function errorReply(err: unknown): ErrorReply {
  if (err instanceof MPushError) {
    return { code: err.errorCode, reason: err.message, disconnect: err.disconnect, badInput: true };
  }
  return INTERNAL;
}
