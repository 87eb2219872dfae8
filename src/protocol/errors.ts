import { ErrorCode } from './command.js';

/**
 * Machine codes for protocol failures. Each maps to the MPush error code the connection layer
 * sends in its ERROR packet before it closes the offending connection.
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
  /** A command code MPush does not define. */
  MPUSH_ERR_UNKNOWN_COMMAND: 'MPUSH_ERR_UNKNOWN_COMMAND',
  /** A field held a value outside its domain (bad JSON, wrong key size, ...). */
  MPUSH_ERR_BAD_FIELD: 'MPUSH_ERR_BAD_FIELD',
  /** A WebSocket text frame that is not a valid JSON packet. */
  MPUSH_ERR_BAD_JSON_PACKET: 'MPUSH_ERR_BAD_JSON_PACKET',
} as const;

export type ProtocolErrorCode = keyof typeof ProtocolErrorCodes;

/** A typed decode failure; never thrown for anything but bad input. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  /** `MPUSH_ERR_*` machine code. */
  readonly code: ProtocolErrorCode;
  /** The MPush error code to put in an ERROR packet (mpush-wire §4). */
  readonly errorCode: number;

  constructor(code: ProtocolErrorCode, message: string, errorCode: number = ErrorCode.UNKNOWN) {
    super(message);
    this.code = code;
    this.errorCode = errorCode;
  }
}
