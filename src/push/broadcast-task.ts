import type { Connection } from '../connection/index.js';
import { Command } from '../protocol/index.js';
import type { AckTracker, AckWaiter } from './ack-tracker.js';
import type { CompiledCondition } from './condition/index.js';
import type { BroadcastCounts, BroadcastReport, BroadcastStatus } from './outcome.js';
import { matchesAnyTag, matchesTagsLikeMpush, parseTags } from './tags.js';

export interface BroadcastSpec {
  taskId: string;
  content: Buffer;
  ackFlags: number;
  /** Ack deadline for each delivery, ms. */
  timeoutMs: number;
  /** Only devices whose tags contain any of these (null: no tag filter; empty: nobody). */
  tags: readonly string[] | null;
  /** Match whole tags instead of MPush's substring test (push.tagMatch = exact). */
  exactTags: boolean;
  /** Only devices for which this holds (null: no condition). */
  condition: CompiledCondition | null;
  /** Devices per second; 0 = unlimited. */
  rate: number;
  /** Most devices to reach; 0 = no limit. */
  max: number;
}

export interface BroadcastHost {
  readonly acks: AckTracker;
  nextPushSessionId(): number;
  readonly slice: number;
}

/** One delivery of a broadcast that awaits its ack. */
class BroadcastAck implements AckWaiter {
  constructor(private readonly counts: BroadcastCounts) {}
  onAck(): void {
    this.counts.acked++;
  }
  onAckTimeout(): void {
    this.counts.failed++;
  }
}

/**
 * A broadcast on this node: walks a snapshot of the bound connections in slices (yielding to
 * I/O between them), filters by tags or condition, writes the same plaintext to each (encrypted
 * per connection by its cipher), holds the rate, and counts as it goes. Cancel stops it at the
 * next device.
 */
export class BroadcastTask {
  readonly spec: BroadcastSpec;
  readonly counts: BroadcastCounts = { matched: 0, sent: 0, acked: 0, failed: 0 };
  status: BroadcastStatus = 'running';
  readonly startedAt = Date.now();
  finishedAt: number | null = null;
  private readonly targets: Connection[];
  private index = 0;
  private readonly ackWaiter: BroadcastAck;
  private readonly finishListeners: Array<(task: BroadcastTask) => void> = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;

  constructor(
    spec: BroadcastSpec,
    targets: Iterable<Connection>,
    private readonly host: BroadcastHost,
  ) {
    this.spec = spec;
    this.targets = Array.from(targets);
    this.ackWaiter = new BroadcastAck(this.counts);
  }

  onFinish(listener: (task: BroadcastTask) => void): void {
    if (this.status !== 'running') listener(this);
    else this.finishListeners.push(listener);
  }

  start(): void {
    this.timer = setImmediate(() => this.step());
  }

  cancel(): boolean {
    if (this.status !== 'running') return false;
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
    }
    this.finish('cancelled');
    return true;
  }

  report(): BroadcastReport {
    return {
      taskId: this.spec.taskId,
      status: this.status,
      startedAt: this.startedAt,
      finishedAt: this.finishedAt,
      ...this.counts,
    };
  }

  private step(): void {
    this.timer = undefined;
    if (this.status !== 'running') return;
    const { rate, max } = this.spec;
    let budget = this.host.slice;
    if (rate > 0) {
      // Hold the rate: never run ahead of `rate` matched devices per elapsed second, with a
      // burst of 50 ms worth so writes go out in small batches rather than one by one.
      const burst = Math.max(1, Math.ceil(rate / 20));
      const allowed = Math.floor(((Date.now() - this.startedAt) / 1000) * rate) + burst;
      budget = Math.min(budget, allowed - this.counts.matched);
      if (budget <= 0) {
        this.timer = setTimeout(() => this.step(), Math.max(1, Math.ceil(1000 / rate)));
        return;
      }
    }
    const targets = this.targets;
    while (budget > 0 && this.index < targets.length) {
      if (max > 0 && this.counts.matched >= max) break;
      const conn = targets[this.index++]!;
      if (conn.closed || conn.userId === '' || !this.accepts(conn)) continue;
      this.counts.matched++;
      budget--;
      this.deliver(conn);
    }
    if (this.index >= targets.length || (max > 0 && this.counts.matched >= max)) return this.finish('done');
    this.timer = setImmediate(() => this.step());
  }

  /**
   * MPush's targeting, exactly (GatewayPushMessage.getCondition, TagsCondition, ScriptCondition):
   * a condition, when present, decides alone and sees `tags` as the raw bind string; otherwise a
   * tag list (even an empty one) filters by substring of that string; otherwise everyone.
   */
  private accepts(conn: Connection): boolean {
    const { tags, condition } = this.spec;
    const raw = conn.tags === '' ? null : conn.tags; // MPush decodes an empty string as null
    if (condition) {
      return condition.evaluate({
        userId: conn.userId,
        tags: raw,
        clientVersion: conn.clientVersion,
        osName: conn.osName,
        osVersion: conn.osVersion,
      });
    }
    if (tags)
      return this.spec.exactTags
        ? raw !== null && matchesAnyTag(parseTags(raw), new Set(tags))
        : matchesTagsLikeMpush(raw, tags);
    return true;
  }

  private deliver(conn: Connection): void {
    const sessionId = this.host.nextPushSessionId();
    const { ackFlags, content, timeoutMs } = this.spec;
    if (ackFlags) this.host.acks.add(sessionId, conn, timeoutMs, this.ackWaiter);
    if (conn.send({ cmd: Command.PUSH, sessionId, flags: ackFlags, content })) {
      this.counts.sent++;
    } else {
      if (ackFlags) this.host.acks.cancel(sessionId);
      this.counts.failed++;
    }
  }

  private finish(status: BroadcastStatus): void {
    this.status = status;
    this.finishedAt = Date.now();
    const listeners = this.finishListeners.splice(0);
    for (const l of listeners) l(this);
  }
}
