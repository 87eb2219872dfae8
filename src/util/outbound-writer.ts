/**
 * What an {@link OutboundWriter} writes to: a transport, a socket adapter, or a test's in-memory
 * sink. Nothing here names a socket, so the writer is unit-tested without one.
 *
 * The sink's drain event (its buffer flushed after a `write` returned false) must reach
 * {@link OutboundWriter.drained}: the sink's owner wires it (a module-level listener, like the
 * transports', so no closure is made per connection).
 */
export interface OutboundSink {
  /** False once the sink can no longer carry bytes (destroyed, closing). */
  readonly writable: boolean;
  /** Bytes accepted by {@link write} and not yet handed to the kernel (or the peer). */
  readonly bufferedBytes: number;
  /** Queues bytes (or a text frame). False when the peer is not keeping up (backpressure). */
  write(data: Buffer | string): boolean;
  /** Holds writes until {@link uncork}, so one tick's writes leave in one syscall. */
  cork(): void;
  uncork(): void;
}

/**
 * Which limit stopped a writer: `outbound-limit` when more than `maxBytes` were queued,
 * `drain-timeout` when a backpressured sink did not drain within `drainTimeoutMs`. Each owner maps
 * it to its own disconnect reason (util/ knows no catalogue).
 */
export type OutboundLimit = 'outbound-limit' | 'drain-timeout';

/** The writer's owner: told once, synchronously, when a limit is passed. It closes the sink. */
export interface OutboundOwner {
  onOutboundLimit(limit: OutboundLimit): void;
}

/**
 * A clock and a way to be called back, for owners that already keep a deadline timer (a device
 * connection files with its server's timer wheel). When asked, the owner's timer calls
 * {@link OutboundWriter.checkDeadline}; calling it early or for a deadline since cleared is harmless.
 */
export interface DeadlineScheduler {
  /** The current time on the scheduler's clock, ms (a coarse clock is fine). */
  now(): number;
  /** Have {@link OutboundWriter.checkDeadline} called at, or soon after, `atMs`. */
  scheduleCheck(atMs: number): void;
}

export interface OutboundLimits {
  /** Most bytes the sink may hold queued after a write; one more stops the writer. */
  maxBytes: number;
  /** How long a backpressured sink may take to drain, ms. */
  drainTimeoutMs: number;
}

/** The writer's flags, in one small integer (a device connection holds one writer: keep it small). */
const CORKED = 1;
const STOPPED = 2;
const BLOCKED = 4;
/** Wrote this tick: a second write in it corks (cleared, with CORKED, when the tick ends). */
const WROTE = 8;

/** Writers that wrote this tick; one nextTick ends the tick for all of them, however many there are. */
let wrote: OutboundWriter[] = [];

function endTick(): void {
  const list = wrote;
  wrote = [];
  for (const w of list) {
    const corked = w.state & CORKED;
    w.state &= ~(CORKED | WROTE);
    if (corked) w.sink.uncork();
  }
}

/** Writers batched per event-loop turn and corked in this one; one setImmediate uncorks them all. */
let looped: OutboundWriter[] = [];

function endLoop(): void {
  const list = looped;
  looped = [];
  for (const w of list) {
    w.state &= ~CORKED;
    w.sink.uncork();
  }
}

/**
 * How a writer batches: `tick` (a device connection: a push is one write, it leaves at once, and a
 * tick's further writes together) or `loop` (a gateway or push-client connection, whose replies and
 * requests come one per tick, each from another socket's read: corked for the whole event-loop
 * turn, so a turn's packets leave in one syscall, uncorked by a setImmediate after the turn's I/O).
 */
export type OutboundBatching = 'tick' | 'loop';

/**
 * Node's longest timer (2^31 - 1 ms, ~24.8 days): a longer delay fires after 1 ms instead, so a
 * huge drain deadline is clamped to this.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

function onDrainTimer(writer: OutboundWriter): void {
  writer.timerFired();
}

/**
 * The one write path of every connection, device, gateway or push client (aedes `write.js` with
 * `waitForDrain`, centrifuge's bounded client queue):
 * - batched per tick: the first write of a tick leaves at once (a push is one write: no cork to
 *   undo, nothing held), the tick's further writes are corked and leave together on the next tick;
 *   or, for connections that carry many small packets, per event-loop turn (`loop`);
 * - bounded in bytes: past `maxBytes` queued the owner is told `outbound-limit`;
 * - a drain deadline: a sink still backpressured `drainTimeoutMs` after a write returned false
 *   gets `drain-timeout`.
 * After a limit, or {@link stop}, the writer writes nothing more.
 */
export class OutboundWriter {
  readonly sink: OutboundSink;
  /** @internal CORKED | STOPPED | BLOCKED | WROTE; CORKED and WROTE are cleared when the tick ends */
  state = 0;
  private blockedSince = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly owner: OutboundOwner;
  /** Held by reference, not copied: a server's writers share one object. */
  private readonly limits: OutboundLimits;
  private readonly scheduler: DeadlineScheduler | undefined;
  private readonly perLoop: boolean;

  /**
   * @param limits kept by reference, so every writer of a server can share one object.
   * @param scheduler where the drain deadline is kept (a device connection files it with its
   *   server's timer wheel). Without one: the writer's own timer, armed only while the sink is
   *   backpressured, unref'd (a deadline past ~24.8 days, Node's longest timer, is clamped to it).
   * @param batching see {@link OutboundBatching} (default `tick`).
   */
  constructor(
    sink: OutboundSink,
    owner: OutboundOwner,
    limits: OutboundLimits,
    scheduler?: DeadlineScheduler,
    batching: OutboundBatching = 'tick',
  ) {
    this.perLoop = batching === 'loop';
    this.sink = sink;
    this.owner = owner;
    this.limits = limits;
    this.scheduler = scheduler;
  }

  /** True while a write is waiting for the sink to drain. */
  get backpressured(): boolean {
    return (this.state & BLOCKED) !== 0;
  }

  /**
   * Queues `data`. False when nothing was written (stopped, or the sink is not writable: the
   * owner decides what that means) or when this write passed `maxBytes` (the owner has then
   * been told, before this returns).
   */
  write(data: Buffer | string): boolean {
    if (this.state & STOPPED) return false;
    const sink = this.sink;
    if (!sink.writable) return false;
    const state = this.state;
    if (this.perLoop) {
      if (!(state & CORKED)) {
        this.state = state | CORKED;
        sink.cork();
        if (looped.push(this) === 1) setImmediate(endLoop);
      }
    } else if (!(state & WROTE)) {
      this.state = state | WROTE;
      if (wrote.push(this) === 1) process.nextTick(endTick);
    } else if (!(state & CORKED)) {
      this.state = state | CORKED;
      sink.cork();
    }
    const ok = sink.write(data);
    if (sink.bufferedBytes > this.limits.maxBytes) {
      // A reader that cannot keep up: drop it rather than buffer without bound.
      this.limit('outbound-limit');
      return false;
    }
    if (!ok && !(this.state & BLOCKED)) this.block();
    return true;
  }

  private block(): void {
    this.state |= BLOCKED;
    const scheduler = this.scheduler;
    const drainTimeoutMs = this.limits.drainTimeoutMs;
    if (scheduler) {
      this.blockedSince = scheduler.now();
      scheduler.scheduleCheck(this.blockedSince + drainTimeoutMs);
    } else {
      this.timer = setTimeout(onDrainTimer, Math.min(drainTimeoutMs, MAX_TIMER_MS), this);
      this.timer.unref();
    }
  }

  /** The sink flushed its queue: the drain deadline is cleared. */
  drained(): void {
    if (!(this.state & BLOCKED)) return;
    this.state &= ~BLOCKED;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /**
   * For an injected {@link DeadlineScheduler}: enforces the drain deadline at `now`, re-filing the
   * check when the deadline is still ahead. True when the deadline passed (the owner was told).
   */
  checkDeadline(now: number): boolean {
    if ((this.state & (BLOCKED | STOPPED)) !== BLOCKED) return false;
    const due = this.blockedSince + this.limits.drainTimeoutMs;
    if (now >= due) {
      this.limit('drain-timeout');
      return true;
    }
    this.scheduler?.scheduleCheck(due);
    return false;
  }

  /** @internal the writer's own drain timer fired: it is cleared on drain, so the sink did not drain. */
  timerFired(): void {
    this.timer = undefined;
    if ((this.state & (BLOCKED | STOPPED)) === BLOCKED) this.limit('drain-timeout');
  }

  /** Writes nothing more and clears the drain timer (the owner is closing). */
  stop(): void {
    this.state = (this.state | STOPPED) & ~BLOCKED;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private limit(which: OutboundLimit): void {
    this.stop();
    this.owner.onOutboundLimit(which);
  }
}
