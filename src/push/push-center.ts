import type { Route, RouteStore } from '../cluster/route-store.js';
import type { Config } from '../config/index.js';
import type { Connection } from '../connection/index.js';
import type { Logger } from '../log.js';
import { Command, ErrorCode, Flags, type GatewayPushMessage } from '../protocol/index.js';
import { LatencyHistogram } from '../util/latency-histogram.js';
import { AckTracker, type AckWaiter } from './ack-tracker.js';
import { BroadcastTask } from './broadcast-task.js';
import { compileCondition } from './condition/index.js';
import type { BroadcastCounts, PushOutcome } from './outcome.js';

/** Single-user pushes by how they ended on this node, and broadcast tasks started (/metrics, /api/stats). */
export interface PushStats {
  success: number;
  failure: number;
  offline: number;
  timeout: number;
  /** Route changes: the user is on another node (the push client follows, and that node counts it). */
  redirect: number;
  broadcasts: number;
}

/**
 * What one push costs the metrics: counters and three histograms, observed from the clock reads
 * the push's time points already make (gateway receipt, write, ack), no allocation.
 */
export class PushMeter {
  readonly stats: PushStats = { success: 0, failure: 0, offline: 0, timeout: 0, redirect: 0, broadcasts: 0 };
  /** Gateway receipt → written to the device. */
  readonly toWrite = new LatencyHistogram();
  /** Gateway receipt → the device's ack. */
  readonly toAck = new LatencyHistogram();
  /** Written → acked: the device's round trip. */
  readonly ack = new LatencyHistogram();

  count(o: PushOutcome): void {
    const s = this.stats;
    if (o.kind === 'ok') s.success++;
    else if (o.code === ErrorCode.OFFLINE) s.offline++;
    else if (o.code === ErrorCode.ACK_TIMEOUT) s.timeout++;
    else if (o.code === ErrorCode.ROUTER_CHANGE) s.redirect++;
    else s.failure++;
  }
}

/**
 * What the push center needs of this node's connection server: a narrow view, so push/ does not
 * depend on the server's sockets or handlers.
 */
export interface PushDevices {
  /** This node's bound connections: one per (user, client type), and all of them for broadcasts. */
  readonly router: {
    get(userId: string, clientType: number): Connection | undefined;
    all(): Iterable<Connection>;
  };
  /** The next sessionId for a pushed packet: the server's own counter (mpush-wire §12). */
  nextPushSessionId(): number;
  /** Told of every ACK a device sends; the push center sets it once. */
  ackListener: ((conn: Connection, sessionId: number) => void) | undefined;
}

export interface PushCenterOptions {
  config: Config;
  log: Logger;
  server: PushDevices;
  routes: RouteStore;
  /** This node's id: routes whose connId starts with `<nodeId>:` were made here. */
  nodeId: string;
  /** True when the node a route points at is alive (a route to a dead node is offline). */
  isRouteLive: (route: Route) => boolean | Promise<boolean>;
}

/**
 * One push written to one device connection: told once that it was written (`final` when no
 * ack is awaited), then of its ack or ack timeout, or that it could not be written.
 */
export interface Delivery extends AckWaiter {
  onWritten(final: boolean): void;
  fail(code: number, reason: string): void;
}

/**
 * Told how a unicast ended, once, with the `tag` it was started with: one listener serves many
 * pushes (the gateway: the connection, tagged with the request's sessionId), so a push makes no
 * closure of its own.
 */
export interface UnicastListener {
  unicastDone(outcome: PushOutcome, tag: number, push: UnicastJob): void;
}

/**
 * A single-user push on this node, completed exactly once. On success it is itself the outcome
 * (kind `ok`), so a delivered push allocates no outcome object.
 */
export class UnicastJob implements Delivery {
  readonly kind = 'ok' as const;
  private written = 0;

  constructor(
    readonly userId: string,
    readonly clientType: number,
    readonly timePoints: Record<string, number>,
    /** When the push center took the push (ms). */
    readonly received: number,
    private readonly meter: PushMeter,
    private readonly listener: UnicastListener,
    private readonly tag: number,
  ) {}

  onAck(): void {
    const now = Date.now();
    this.timePoints.acked = now;
    this.meter.ack.observe(now - (this.written || this.received));
    this.meter.toAck.observe(now - this.received);
    this.finish(this);
  }

  onWritten(final: boolean): void {
    const now = Date.now();
    this.timePoints.written = now;
    this.written = now;
    this.meter.toWrite.observe(now - this.received);
    if (final) this.finish(this);
  }

  onAckTimeout(): void {
    this.finish({ kind: 'error', code: ErrorCode.ACK_TIMEOUT, reason: 'ack timeout' });
  }

  fail(code: number, reason: string): void {
    this.finish({ kind: 'error', code, reason });
  }

  finish(o: PushOutcome): void {
    this.meter.count(o);
    this.listener.unicastDone(o, this.tag, this);
  }
}

function addCounts(into: BroadcastCounts, from: BroadcastCounts): void {
  into.matched += from.matched;
  into.sent += from.sent;
  into.acked += from.acked;
  into.failed += from.failed;
}

/** Live pushes held for one connection while its stored messages are replayed. */
const MAX_HELD = 10_000;

const offline = (): PushOutcome => ({ kind: 'error', code: ErrorCode.OFFLINE, reason: 'offline' });

/**
 * The push center: delivers gateway pushes to this node's devices. A single-user push ends in
 * one outcome (OK, or ERROR offline / failure / route change / ack timeout); a broadcast runs as
 * a task with live counts that can be queried and cancelled.
 */
export class PushCenter {
  readonly acks: AckTracker;
  readonly slice: number;
  /** Outcome counts and latency histograms (api/metrics.ts reads them). */
  readonly meter = new PushMeter();
  private readonly tasks = new Map<string, BroadcastTask>();
  /** The counts of broadcast tasks no longer held (swept or replaced). */
  private readonly retired: BroadcastCounts = { matched: 0, sent: 0, acked: 0, failed: 0 };
  /** Connections whose stored messages are being replayed: new unicasts wait behind them. */
  private readonly replaying = new Map<Connection, Array<() => void>>();
  private readonly sweeper: NodeJS.Timeout;
  private nodeId: string;
  /** Single-user pushes handed to this node (by its gateway or its HTTP API): the push rate's base. */
  unicasts = 0;

  constructor(private readonly opts: PushCenterOptions) {
    this.nodeId = opts.nodeId;
    this.acks = new AckTracker(opts.config.push.ackTickMs);
    this.slice = opts.config.push.broadcastSlice;
    opts.server.ackListener = (conn, sessionId) => {
      if (!this.acks.ack(conn, sessionId))
        opts.log.debug('ack for nothing awaited', { conn: conn.id, sessionId });
    };
    this.sweeper = setInterval(() => this.sweepTasks(), 30_000);
    this.sweeper.unref();
  }

  /** The node id is known once the gateway port is bound. */
  setNodeId(id: string): void {
    this.nodeId = id;
  }

  nextPushSessionId(): number {
    return this.opts.server.nextPushSessionId();
  }

  /** A push's ack timeout: its own, else push.defaultTimeoutMs. */
  timeoutOf(ms: number): number {
    return ms > 0 ? ms : this.opts.config.push.defaultTimeoutMs;
  }

  /**
   * Pushes to one user's device of one client type. The ack task is registered before the write
   * (mpush-wire §12), so an ack can never arrive unexpected.
   */
  unicast(m: GatewayPushMessage, flags: number, done: (outcome: PushOutcome) => void): void {
    this.unicastTo(m, flags, { unicastDone: done }, 0);
  }

  /** {@link unicast}, its outcome told to `listener` with `tag`: no closure per push. */
  unicastTo(m: GatewayPushMessage, flags: number, listener: UnicastListener, tag: number): void {
    this.unicasts++;
    this.unicastHere(m, flags, listener, tag);
  }

  private unicastHere(m: GatewayPushMessage, flags: number, listener: UnicastListener, tag: number): void {
    const received = Date.now();
    const timePoints: Record<string, number> = { received };
    const job = new UnicastJob(m.userId, m.clientType, timePoints, received, this.meter, listener, tag);
    const conn = this.opts.server.router.get(m.userId, m.clientType);
    if (!conn || conn.closed) {
      this.notHere(m.userId, m.clientType).then(
        (o) => job.finish(o),
        (err: Error) => job.fail(ErrorCode.PUSH_CLIENT_FAILURE, `route store: ${err.message}`),
      );
      return;
    }
    // Nearly always none replaying: no lookup per push then.
    const held = this.replaying.size === 0 ? undefined : this.replaying.get(conn);
    if (held && held.length < MAX_HELD) {
      held.push(() => this.unicastHere(m, flags, listener, tag));
      return;
    }
    this.deliver(conn, m.content, flags & (Flags.AUTO_ACK | Flags.BIZ_ACK), this.timeoutOf(m.timeout), job);
  }

  /**
   * Writes one PUSH to `conn` and tracks its ack (the inbox replays stored messages through
   * this too). The ack task is registered before the write (mpush-wire §12).
   */
  deliver(conn: Connection, content: Buffer, ackFlags: number, timeoutMs: number, job: Delivery): void {
    const sessionId = this.nextPushSessionId();
    if (ackFlags) this.acks.add(sessionId, conn, timeoutMs, job);
    if (!conn.send({ cmd: Command.PUSH, sessionId, flags: ackFlags, content })) {
      if (ackFlags) this.acks.cancel(sessionId);
      return job.fail(ErrorCode.PUSH_CLIENT_FAILURE, 'write to device failed');
    }
    // NO_ACK: success once written (mpush-wire §12).
    job.onWritten(!ackFlags);
  }

  /** Holds new unicasts to `conn` until {@link endReplay}: its stored messages go first. */
  beginReplay(conn: Connection): void {
    if (!this.replaying.has(conn)) this.replaying.set(conn, []);
  }

  /** The replay to `conn` is written (or given up): the unicasts it held go now, in order. */
  endReplay(conn: Connection): void {
    const held = this.replaying.get(conn);
    this.replaying.delete(conn);
    if (held) for (const run of held) run();
  }

  /** No local connection: offline, or moved to a live node (route change). */
  private async notHere(userId: string, clientType: number): Promise<PushOutcome> {
    // A store push for a user the sender found no route for (client type -1): no route has that
    // type, so no lookup can make it a route change.
    if (clientType < 0) return offline();
    const route = (await this.opts.routes.lookup(userId)).get(clientType);
    if (route && !route.connId.startsWith(`${this.nodeId}:`) && (await this.opts.isRouteLive(route))) {
      return { kind: 'error', code: ErrorCode.ROUTER_CHANGE, reason: 'router change' };
    }
    return offline();
  }

  /**
   * Starts a broadcast on this node (every bound device, or those matching tags or a condition).
   * @throws ConditionError for a condition that does not compile.
   */
  broadcast(m: GatewayPushMessage, flags: number, taskId: string): BroadcastTask {
    const existing = this.tasks.get(taskId);
    if (existing?.status === 'running') return existing;
    // MPush's ScriptCondition accepts only a real `true` (a ClassCastException is false).
    const condition = m.condition ? compileCondition(m.condition, { strictBoolean: true }) : null;
    const task = new BroadcastTask(
      {
        taskId,
        content: m.content,
        ackFlags: flags & (Flags.AUTO_ACK | Flags.BIZ_ACK),
        timeoutMs: this.timeoutOf(m.timeout),
        tags: m.tags,
        exactTags: this.opts.config.push.tagMatch === 'exact',
        condition,
        rate: m.broadcastRate || this.opts.config.push.broadcastRate,
        max: m.broadcastMax ?? 0,
      },
      this.opts.server.router.all(),
      this,
    );
    if (existing) this.retire(existing);
    this.tasks.set(taskId, task);
    this.meter.stats.broadcasts++;
    task.start();
    return task;
  }

  task(taskId: string): BroadcastTask | undefined {
    return this.tasks.get(taskId);
  }

  /** Deliveries of every broadcast this node ran: those still held and those swept. */
  broadcastTotals(): BroadcastCounts {
    const sum = { ...this.retired };
    for (const t of this.tasks.values()) addCounts(sum, t.counts);
    return sum;
  }

  /** Keeps a dropped task's counts in the totals (an ack after this is not counted). */
  private retire(t: BroadcastTask): void {
    addCounts(this.retired, t.counts);
  }

  private sweepTasks(): void {
    const keep = this.opts.config.push.taskRetentionMs;
    const now = Date.now();
    for (const [id, t] of this.tasks) {
      if (t.finishedAt !== null && now - t.finishedAt > keep) {
        this.retire(t);
        this.tasks.delete(id);
      }
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const t of this.tasks.values()) t.cancel();
    this.acks.close();
  }
}
