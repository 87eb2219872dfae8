import type { PushExt } from '../../protocol/index.js';
import type { PushReplyInfo } from './gateway-reply.js';

/** One GATEWAY_PUSH as a {@link LocalGateway} takes it: the fields the wire would carry. */
export interface LocalPush {
  userId: string;
  clientType: number;
  /** What the gateway is told (the request's time left, less the margin), ms. */
  timeout: number;
  content: Buffer;
  ackFlags: number;
  /** The inbox extension of a `store: true` call; null otherwise. */
  ext: PushExt | null;
}

/**
 * What a gateway answers a push, decoded: OK with the node's time points, or ERROR with its code
 * (1 offline, 2 failure, 3 route change, 4 ack timeout); `info` when the push carried the inbox
 * extension (what {@link decodePushReply} reads from the reply's data).
 */
export type PushAnswer =
  | { ok: true; timePoints?: Record<string, number> | undefined; info?: PushReplyInfo | undefined }
  | { ok: false; code: number; reason: string; info?: PushReplyInfo | undefined };

/**
 * A gateway in the sender's own process (the node's HTTP API is one): a request routed to it is
 * handed over as a call, not written to a socket and read back, and answered as the gateway
 * would answer it. Requests routed anywhere else go through the sender's connections.
 */
export interface LocalGateway {
  /** True when `host:port` is this in-process gateway. */
  serves(host: string, port: number): boolean;
  /** Pushes `p`; `answer` is called once, with what the gateway would have replied. */
  push(p: LocalPush, answer: (a: PushAnswer) => void): void;
}
