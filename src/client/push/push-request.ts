import {
  Command,
  ErrorCode,
  ErrorCodec,
  Flags,
  GatewayPushCodec,
  OkCodec,
  type Packet,
} from '../../protocol/index.js';
import type { GatewayChannel, ReplyHandler } from './gateway-channel.js';
import type { RouteEntry } from './route-source.js';
import { type PushResult, ResultCode, type ResultName, type Timeline } from './types.js';

/** What a request needs from its sender. */
export interface RequestHost {
  channel(host: string, port: number): GatewayChannel;
  /** Looks the route of (user, client type) up again, bypassing the cache. */
  relookup(userId: string, clientType: number): Promise<RouteEntry | undefined>;
  dropRoute(userId: string): void;
  /** Queues the completion to run after the current I/O callback. */
  complete(request: PushRequest, result: PushResult): void;
  readonly maxRedirects: number;
}

const GATEWAY_MARGIN_MS = 500;

/**
 * One push to one (user, client type): the state machine of DESIGN.md. It ends in exactly one
 * result (success, failure, offline, timeout), by compare-and-set from `init`; a late reply
 * after a timeout, or a second reply, is dropped. Redirects (ERROR 3) follow the user to its new
 * node with a new sessionId, at most `maxRedirects` times.
 */
export class PushRequest implements ReplyHandler {
  private state: 'init' | 'done' = 'init';
  private readonly timeline: Timeline;
  private timer: NodeJS.Timeout | undefined;
  private redirects = 0;
  private channelRef: GatewayChannel | null = null;
  private sessionId = -1;
  private readonly deadline: number;
  /** Kept while a redirect may still need to resend it; dropped once no resend can happen. */
  private content: Buffer | null;

  constructor(
    private readonly host: RequestHost,
    readonly userId: string,
    readonly clientType: number,
    private route: RouteEntry,
    content: Buffer,
    private readonly ackFlags: number,
    readonly timeoutMs: number,
  ) {
    this.content = content;
    this.timeline = { begin: Date.now() };
    this.deadline = this.timeline.begin + timeoutMs;
  }

  get done(): boolean {
    return this.state === 'done';
  }

  start(): void {
    this.timer = setTimeout(() => this.finish('timeout', 'no reply within the timeout'), this.timeoutMs);
    void this.send();
  }

  private async send(): Promise<void> {
    this.timeline['check-gateway-conn'] = Date.now();
    const ch = this.host.channel(this.route.host, this.route.port);
    try {
      await ch.connect();
    } catch (err) {
      // The node may be gone: the next push looks the route up again instead of reusing this one.
      this.host.dropRoute(this.userId);
      return this.finish('failure', (err as Error).message);
    }
    if (this.done || !this.content) return;
    const left = this.deadline - Date.now();
    const body = GatewayPushCodec.encode({
      userId: this.userId,
      clientType: this.clientType,
      // The node gives up first, so its answer (ack timeout) beats our own timer.
      timeout: Math.max(1, left - GATEWAY_MARGIN_MS),
      content: this.content,
      taskId: '',
      tags: null,
      condition: '',
    });
    this.timeline['send-to-gateway-begin'] = Date.now();
    this.channelRef = ch;
    this.sessionId = ch.send(Command.GATEWAY_PUSH, this.ackFlags, body, this);
    if (this.sessionId < 0) return this.finish('failure', `gateway ${ch.address} not writable`);
    this.timeline['send-to-gateway-end'] = Date.now();
    if (this.redirects >= this.host.maxRedirects) this.content = null;
  }

  /** @internal ReplyHandler */
  onReply(p: Packet): void {
    if (this.done) return;
    if (p.cmd === Command.OK) {
      let timePoints: Record<string, number> | undefined;
      try {
        const data = OkCodec.decode(p.body).data;
        timePoints = data
          ? (JSON.parse(data) as { timePoints?: Record<string, number> }).timePoints
          : undefined;
      } catch {
        timePoints = undefined;
      }
      return this.finish('success', undefined, timePoints);
    }
    let code: number = ErrorCode.UNKNOWN;
    let reason = 'gateway error';
    try {
      const e = ErrorCodec.decode(p.body);
      code = e.code;
      reason = e.reason || reason;
    } catch {
      // keep the defaults: a malformed ERROR is still a failure
    }
    switch (code) {
      case ErrorCode.OFFLINE:
        this.host.dropRoute(this.userId);
        return this.finish('offline', reason);
      case ErrorCode.ROUTER_CHANGE:
        return this.redirect();
      case ErrorCode.ACK_TIMEOUT:
        return this.finish('timeout', reason);
      default:
        return this.finish('failure', reason);
    }
  }

  /** @internal ReplyHandler */
  onChannelClosed(reason: string): void {
    this.finish('failure', reason);
  }

  private redirect(): void {
    this.host.dropRoute(this.userId);
    if (this.redirects >= this.host.maxRedirects) {
      return this.finish('failure', `route changed ${this.redirects + 1} times: redirect bound reached`);
    }
    this.redirects++;
    this.host.relookup(this.userId, this.clientType).then(
      (route) => {
        if (this.done) return;
        if (!route) return this.finish('offline', 'offline after route change');
        this.route = route;
        // A fresh timer for what is left of the deadline replaces the old one.
        clearTimeout(this.timer);
        this.timer = setTimeout(
          () => this.finish('timeout', 'no reply within the timeout'),
          Math.max(0, this.deadline - Date.now()),
        );
        void this.send();
      },
      (err: Error) => this.finish('failure', `route lookup: ${err.message}`),
    );
  }

  private finish(result: ResultName, reason?: string, timePoints?: Record<string, number>): void {
    if (this.state !== 'init') return; // compare-and-set: the first outcome wins
    this.state = 'done';
    clearTimeout(this.timer);
    if (result === 'timeout' && this.channelRef && this.sessionId > 0) this.channelRef.forget(this.sessionId);
    this.content = null;
    this.timeline.end = Date.now();
    const out: PushResult = {
      userId: this.userId,
      clientType: this.clientType,
      result,
      code: ResultCode[result],
      gateway: `${this.route.host}:${this.route.port}`,
      redirects: this.redirects,
      timeline: this.timeline,
    };
    if (reason !== undefined) out.reason = reason;
    if (timePoints !== undefined) out.timePoints = timePoints;
    this.host.complete(this, out);
  }
}

/** Packet flags of an ack model. */
export function ackFlagsOf(model: string | undefined): number {
  switch (model) {
    case 'AUTO_ACK':
      return Flags.AUTO_ACK;
    case 'BIZ_ACK':
      return Flags.BIZ_ACK;
    default:
      return 0;
  }
}
