import type { LocalGateway, LocalPush, PushAnswer } from '../client/push/local-gateway.js';
import { errorReply, type GatewayPushMessage } from '../protocol/index.js';
import { keptUnicast } from '../push/kept-unicast.js';
import type { PushOutcome } from '../push/outcome.js';
import type { PushCenter } from '../push/push-center.js';
import type { HttpNodeView } from './node-view.js';

/**
 * The node's gateway as the HTTP API's PushSender reaches it in-process: a push for a user of
 * this node goes straight to the push center, as the gateway would hand it over (the same
 * `unicast`, the same inbox extension), and is answered as the gateway would answer it, with no
 * socket, no encode and no decode in between. Pushes for users of other nodes still go over
 * the sender's connections to those nodes' gateways.
 */
export class NodeGateway implements LocalGateway {
  private readonly center: PushCenter;

  constructor(
    private readonly node: HttpNodeView,
    private readonly address: { host: string; port: number },
  ) {
    this.center = node.push;
  }

  serves(host: string, port: number): boolean {
    return port === this.address.port && host === this.address.host;
  }

  push(p: LocalPush, answer: (a: PushAnswer) => void): void {
    const m: GatewayPushMessage = {
      userId: p.userId,
      clientType: p.clientType,
      timeout: p.timeout,
      content: p.content,
      taskId: '',
      tags: null,
      condition: '',
    };
    try {
      if (!p.ext) return this.center.unicast(m, p.ackFlags, (o) => answer(plainAnswer(o)));
      m.ext = p.ext;
      keptUnicast(this.center, this.node.inbox, m, p.ackFlags, (o, kept) => {
        const info: { stored: boolean; storeError?: string; timePoints?: Record<string, number> } = {
          stored: kept.stored,
        };
        if (kept.storeError !== undefined) info.storeError = kept.storeError;
        if (o.kind !== 'ok')
          return answer({ ok: false, code: o.code, reason: o.reason || 'gateway error', info });
        info.timePoints = o.timePoints;
        answer({ ok: true, timePoints: o.timePoints, info });
      });
    } catch (err) {
      // As the gateway answers a push it cannot take (protocol/errors.ts).
      const r = errorReply(err);
      if (!r.badInput) this.node.log.error('local push failed', { err: (err as Error).stack });
      answer({ ok: false, code: r.code, reason: r.reason });
    }
  }
}

function plainAnswer(o: PushOutcome): PushAnswer {
  return o.kind === 'ok'
    ? { ok: true, timePoints: o.timePoints }
    : { ok: false, code: o.code, reason: o.reason || 'gateway error' };
}
