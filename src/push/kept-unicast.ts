import { randomUUID } from 'node:crypto';
import { ErrorCode, Flags, type GatewayPushMessage } from '../protocol/index.js';
import type { Inbox, InboxVerdict, LiveEnd, StoreTicket } from './inbox.js';
import type { PushOutcome } from './outcome.js';
import type { PushCenter } from './push-center.js';

/** What a unicast with the inbox extension reports besides its outcome. */
export interface KeptInfo extends InboxVerdict {
  messageId: string;
}

/**
 * A unicast with the inbox extension (`m.ext`, push-ext.ts), as the gateway runs it for a push
 * client and the HTTP API for a user of this node: the same push, then (for `store: true`) the
 * inbox's verdict on what it missed, and the message's id (the caller's, else generated). A route
 * change is not stored here: the push client follows it with the same messageId, and the node
 * the user moved to decides.
 */
export function keptUnicast(
  push: PushCenter,
  inbox: Inbox,
  m: GatewayPushMessage,
  flags: number,
  done: (o: PushOutcome, info: KeptInfo) => void,
): void {
  const ext = m.ext ?? {};
  const messageId = ext.messageId ?? randomUUID();
  const ackFlags = flags & (Flags.AUTO_ACK | Flags.BIZ_ACK);
  const ticket: StoreTicket | null = ext.store
    ? {
        messageId,
        userId: m.userId,
        content: m.content,
        ackFlags,
        timeoutMs: push.timeoutOf(m.timeout),
        ...(ext.ttl !== undefined ? { ttlSeconds: ext.ttl } : {}),
      }
    : null;
  push.unicast(m, flags, (o) => {
    const end = liveEnd(o, ackFlags);
    const verdict: Promise<InboxVerdict> =
      ticket && end ? inbox.afterPush(ticket, m.clientType, end) : Promise.resolve({ stored: false });
    void verdict.then((v) => done(o, { messageId, ...v }));
  });
}

/** What the inbox makes of a live outcome; null for a route change (the next node decides). */
function liveEnd(o: PushOutcome, ackFlags: number): LiveEnd | null {
  if (o.kind === 'ok') return ackFlags ? 'acked' : 'sent';
  return o.code === ErrorCode.ROUTER_CHANGE ? null : 'missed';
}
