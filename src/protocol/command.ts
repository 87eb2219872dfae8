/** Command codes of the MPush packet header (mpush-wire §2). */
export const Command = {
  HEARTBEAT: 1,
  HANDSHAKE: 2,
  LOGIN: 3,
  LOGOUT: 4,
  BIND: 5,
  UNBIND: 6,
  FAST_CONNECT: 7,
  PAUSE: 8,
  RESUME: 9,
  ERROR: 10,
  OK: 11,
  HTTP_PROXY: 12,
  KICK: 13,
  GATEWAY_KICK: 14,
  PUSH: 15,
  GATEWAY_PUSH: 16,
  NOTIFICATION: 17,
  GATEWAY_NOTIFICATION: 18,
  CHAT: 19,
  GATEWAY_CHAT: 20,
  GROUP: 21,
  GATEWAY_GROUP: 22,
  ACK: 23,
  NACK: 24,
} as const;

export type CommandName = keyof typeof Command;
export type CommandCode = (typeof Command)[CommandName];

const commandNames = new Map<number, CommandName>(
  (Object.keys(Command) as CommandName[]).map((name) => [Command[name], name]),
);

/** The name of a command code, or `undefined` for a code MPush does not define. */
export function commandName(code: number): CommandName | undefined {
  return commandNames.get(code);
}

/** Packet flag bits (mpush-wire §1). */
export const Flags = {
  CRYPTO: 1,
  COMPRESS: 2,
  BIZ_ACK: 4,
  AUTO_ACK: 8,
  JSON_BODY: 16,
} as const;

/** Error codes carried in ERROR packets (mpush-wire §4). */
export const ErrorCode = {
  OFFLINE: 1,
  PUSH_CLIENT_FAILURE: 2,
  ROUTER_CHANGE: 3,
  ACK_TIMEOUT: 4,
  DISPATCH_ERROR: 100,
  UNSUPPORTED_CMD: 101,
  REPEAT_HANDSHAKE: 102,
  SESSION_EXPIRED: 103,
  INVALID_DEVICE: 104,
  UNKNOWN: -1,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;
export type ErrorCodeValue = (typeof ErrorCode)[ErrorCodeName];

/**
 * Commands mpush-ts adds on the gateway port only, for its own push clients. MPush's device SDKs
 * never see them; codes are outside MPush's table so an MPush peer answers them with 101.
 */
export const ExtCommand = {
  /** Push client → gateway: proves it holds the gateway secret (HMAC over a timestamp). */
  GATEWAY_AUTH: 64,
  /** Push client → gateway: where are these users? Answered by OK with the routes as JSON. */
  GATEWAY_ROUTE_QUERY: 65,
  /** Push client → gateway: a broadcast task's counts, or its cancel. Answered by OK with JSON. */
  GATEWAY_BROADCAST_CONTROL: 66,
  /** Push client → gateway: a message's receipt. Answered by OK with the receipt as JSON, or ERROR. */
  GATEWAY_MESSAGE_STATUS: 67,
  /**
   * Push client → gateway: "I speak mpush-ts's extensions" (body: the extension version). Until a
   * connection says so it is answered exactly as MPush answers (gateway-ext.ts, MPushReplies).
   */
  GATEWAY_HELLO: 68,
} as const;
