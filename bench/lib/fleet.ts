// A device fleet: a child process holding up to ~19,000 devices (one may open 20,000 files), each the
// SDK's DeviceProtocol over a BinaryWire; this file owns sockets, pacing and counts. Lean on purpose:
// a Device is its protocol's host, module-level socket listeners find it through a symbol.
// `run` modes: bind (connect, handshake, BIND `<userPrefix><i>` (`holdBind`: on `bindHeld`), hold;
// pushes asking an ack are acked, the others timestamped; one in `every` is opened and compared with
// the announced content; with `ids`, each acked push is counted by `msgId`, a second one to one user a
// duplicate), bare (connect, write `barePayloadBytes`, hold). At most `concurrency` devices are between
// "connect started" and "done"; a failed one is tried again up to `maxAttempts` times.

import { connect, type Socket } from 'node:net';
import {
  BinaryWire,
  type BinaryWireTypes,
  binaryWireSettings,
  type DeviceClientError,
  type DeviceHost,
  type DeviceProfile,
  DeviceProtocol,
  type DevicePush,
  type OkEvent,
  type ServerErrorEvent,
} from '../../src/client/device/index.js';
import { Command, type Packet } from '../../src/protocol/index.js';
import { type Percentiles, percentiles } from './report.js';
import { emit, type Request, serveRequests } from './rpc.js';

/** `count` devices on host:port bound as `<userPrefix><i>`, i = first … first+count-1. */
export type DeviceGroup = { host: string; port: number; count: number; userPrefix: string; first?: number };

export interface FleetRun {
  mode: 'bind' | 'bare';
  groups: DeviceGroup[];
  /** Source address (each has its own ephemeral port range). */
  localAddress: string;
  concurrency: number;
  maxAttempts: number;
  /** Base64 X.509 SPKI of the server key (bind). */
  publicKey?: string;
  proc: number;
  barePayloadBytes?: number;
  /** Bind: stop after the handshake; `bindHeld` then binds them all at once. */
  holdBind?: boolean;
  /** Each held device writes a heartbeat once per this many seconds (0: never). */
  heartbeatSeconds?: number;
}

/** Epoch ms with a fraction, comparable across processes on one machine. */
const epochMs = () => performance.timeOrigin + performance.now();
const bump = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1;
};

const State = { Idle: 0, Connecting: 1, Handshaking: 2, Binding: 3, Done: 4, Failed: 5, Late: 6 } as const;

/** What the MPush Android SDK sends at the handshake; pushes are opened only when sampled. */
const profile: DeviceProfile = {
  osName: 'android',
  osVersion: '10',
  clientVersion: '1.0.0',
  minHeartbeat: 0,
  maxHeartbeat: 180_000,
  decodePushes: false,
};

class Device implements DeviceHost<BinaryWireTypes> {
  socket: Socket | null = null;
  proto: DeviceProtocol<BinaryWireTypes> | null = null;
  state: number = State.Idle;
  attempt = 0;
  lastError = '';
  t0 = 0;

  constructor(
    readonly group: DeviceGroup,
    readonly index: number,
  ) {}

  get userId(): string {
    return `${this.group.userPrefix}${this.index}`;
  }

  write(frame: Buffer): void {
    this.socket?.write(frame);
  }

  onHandshake(): void {
    if (run!.params.holdBind) return complete(this, epochMs());
    this.state = State.Binding;
    this.proto!.bind(this.userId);
  }

  onOk(reply: OkEvent): void {
    if (reply.cmd !== Command.BIND || (this.state !== State.Binding && this.state !== State.Late))
      return bump(unexpected, `OK to ${reply.cmd}`);
    // Held idle from here: the native AES contexts come back with the first push.
    this.proto!.release();
    if (this.state === State.Binding) return complete(this, epochMs());
    this.state = State.Done;
  }

  /** A refused handshake is followed by a fatal onError, which then gives this reason. */
  onServerError(e: ServerErrorEvent): void {
    this.lastError = `ERROR cmd ${e.cmd} code ${e.code}: ${e.reason}`;
    if (this.state !== State.Handshaking) fail(this, this.lastError);
  }

  onError(err: DeviceClientError, fatal: boolean): void {
    if (fatal) fail(this, this.lastError || `client: ${err.code} ${err.message}`);
    else bump(unexpected, err.code);
  }

  onPush(p: DevicePush<Buffer>): void {
    stats.pushes++;
    if (p.ackModel !== 'none') {
      if (p.ackModel === 'biz') this.proto!.ack(p.sessionId);
      stats.acks++;
      stats.lastAckedAt = epochMs();
      if (verify.ids) track(this, p);
      if (verify.unicasts++ % verify.every === 0) check(this, p, verify.unicast);
      return;
    }
    const now = Date.now(); // the pusher's clock: its Date.now() when it sent the broadcast
    if (broadcast.received++ === 0) broadcast.firstAt = now;
    broadcast.lastAt = now;
    if (verify.broadcasts++ % verify.every === 0) check(this, p, verify.broadcast);
    if (!reported && broadcast.received >= broadcast.expect) {
      reported = true;
      emit('broadcastDone', receipt());
    }
  }

  onKick(): void {
    bump(unexpected, 'KICK');
  }

  onPacket(p: Packet): void {
    bump(unexpected, `cmd ${p.cmd}`);
  }
}

class Run {
  readonly wire;
  readonly payload;
  readonly queue: Device[] = [];
  next = 0;
  readonly retry: Device[] = [];
  inflight = 0;
  stopping = false;
  readonly lat: number[] = [];
  readonly result;

  constructor(
    readonly params: FleetRun,
    readonly resolve: (r: FleetResult) => void,
  ) {
    this.wire = binaryWireSettings(params.publicKey ? { publicKey: params.publicKey } : {});
    this.payload = Buffer.alloc(params.barePayloadBytes ?? 0, 0x42);
    // Interleaved, so each server's share ramps up at the same time.
    const longest = Math.max(0, ...params.groups.map((g) => g.count));
    for (let i = 0; i < longest; i++) {
      for (const g of params.groups) if (i < g.count) this.queue.push(new Device(g, (g.first ?? 0) + i));
    }
    this.result = {
      target: this.queue.length,
      bound: 0,
      failed: 0,
      attempts: 0,
      errors: {} as Record<string, number>,
      seconds: 0,
      startedAt: epochMs(),
      firstBoundAt: 0,
      /** ms from connect started to bound (or, bare, to connected). */
      latencyMs: undefined as Percentiles | undefined,
    };
  }
}
export type FleetResult = Run['result'];

let run: Run | null = null;
const held: Device[] = [];
/** `held`: bound and still open; `lost`: closed after bound (and why); `verified`/`corrupt`: sampled pushes. */
const stats = { held: 0, lost: 0, pushes: 0, acks: 0, verified: 0, corrupt: 0, lastAckedAt: 0 };
/** With `ids`: `<userId> <msgId>` of every acked push, and how many came again. */
const seen = { ids: new Set<string>(), duplicates: 0 };
const errorsAfterBound: Record<string, number> = {};
const unexpected: Record<string, number> = {};
let dropping = false;
let heartbeatSeconds = 0;
let proc = 0;
const verify = {
  every: 64,
  ids: false,
  unicast: Buffer.alloc(0),
  broadcast: Buffer.alloc(0),
  unicasts: 0,
  broadcasts: 0,
};
const broadcast = { expect: 0, received: 0, firstAt: 0, lastAt: 0 };
let reported = true;
const receipt = () => ({ proc, ...broadcast });
export type BroadcastReceipt = ReturnType<typeof receipt>;

const kDevice = Symbol('bench.device');
type TaggedSocket = Socket & { [kDevice]?: Device };

function onConnect(this: TaggedSocket): void {
  const d = this[kDevice];
  if (!d) return;
  if (run!.params.mode === 'bare') {
    this.write(run!.payload);
    return complete(d, epochMs());
  }
  d.state = State.Handshaking;
  d.proto!.start();
}
function onData(this: TaggedSocket, chunk: Buffer): void {
  this[kDevice]?.proto?.receive(chunk);
}
function onError(this: TaggedSocket, err: NodeJS.ErrnoException): void {
  const d = this[kDevice];
  if (d) d.lastError = err.code ?? err.message;
}
function onClose(this: TaggedSocket): void {
  const d = this[kDevice];
  this[kDevice] = undefined;
  if (d && d.socket === this) fail(d, d.lastError ? `socket ${d.lastError}` : 'closed by server');
}

function start(d: Device, r: Run): void {
  d.attempt++;
  r.result.attempts++;
  d.state = State.Connecting;
  d.lastError = '';
  d.t0 = epochMs();
  if (r.params.mode !== 'bare')
    d.proto = new DeviceProtocol(new BinaryWire(r.wire), d, `dev-${d.userId}`, profile);
  const s: TaggedSocket = connect({
    host: d.group.host,
    port: d.group.port,
    localAddress: r.params.localAddress,
    noDelay: true,
  });
  s[kDevice] = d;
  d.socket = s;
  s.on('connect', onConnect);
  s.on('data', onData);
  s.on('error', onError);
  s.on('close', onClose);
}

/** Drops the connection: reset (RST, no TIME_WAIT on either side) or closed. */
function release(d: Device, reset: boolean): void {
  if (reset) d.socket?.resetAndDestroy();
  else d.socket?.destroy();
  d.socket = null;
  d.proto = null;
}

/** Opens a sampled push and compares it with the announced content (when one was announced). */
function check(d: Device, p: DevicePush<Buffer>, expected: Buffer): void {
  if (expected.length === 0) return;
  try {
    if (d.proto!.openContent(p).equals(expected)) stats.verified++;
    else stats.corrupt++;
  } catch {
    stats.corrupt++;
  }
}

function track(d: Device, p: DevicePush<Buffer>): void {
  let id: string | undefined;
  try {
    id = /"msgId":"([^"]+)"/.exec(d.proto!.openContent(p).toString('utf8'))?.[1];
  } catch {}
  const key = `${d.userId} ${id}`;
  if (id === undefined) stats.corrupt++;
  else if (seen.ids.has(key)) seen.duplicates++;
  else seen.ids.add(key);
}

function complete(d: Device, now: number): void {
  const r = run!;
  r.result.bound++;
  r.result.firstBoundAt ||= now;
  r.lat.push(now - d.t0);
  r.inflight--;
  d.state = State.Done;
  next(r);
}

/** This attempt failed: retry, or count the device failed; a held device is counted lost. */
function fail(d: Device, reason: string): void {
  if (d.state === State.Done || d.state === State.Late) {
    if (!dropping) {
      stats.lost++;
      bump(errorsAfterBound, reason);
    }
    d.state = State.Failed;
    return release(d, false);
  }
  if (d.state === State.Failed || d.state === State.Idle) return;
  const r = run!;
  bump(r.result.errors, reason);
  r.inflight--;
  release(d, false);
  const again = d.attempt < r.params.maxAttempts && !r.stopping;
  d.state = again ? State.Idle : State.Failed;
  if (again) r.retry.push(d);
  else r.result.failed++;
  next(r);
}

/** Starts devices while below the concurrency bound; settles the run when all are done. */
function next(r: Run): void {
  while (!r.stopping && r.inflight < r.params.concurrency) {
    const d = r.retry.pop() ?? (r.next < r.queue.length ? r.queue[r.next++] : undefined);
    if (!d) break;
    r.inflight++;
    start(d, r);
  }
  const settled = r.inflight === 0 && (r.stopping || (r.next >= r.queue.length && r.retry.length === 0));
  if (!settled || run !== r) return;
  run = null;
  const res = r.result;
  res.seconds = (epochMs() - res.startedAt) / 1000;
  res.latencyMs = percentiles(Float64Array.from(r.lat));
  r.resolve(res);
}

function startRun(params: FleetRun): Promise<FleetResult> {
  if (run) return Promise.reject(new Error('a run is already going'));
  proc = params.proc;
  dropping = false;
  heartbeatSeconds = params.heartbeatSeconds ?? heartbeatSeconds;
  return new Promise((resolve) => {
    const r = new Run(params, resolve);
    held.push(...r.queue);
    run = r;
    next(r);
  });
}

// Heartbeats: every held device once per `heartbeatSeconds`, a slice each second, so a long run is
// not cut by the server's read timeout.
let hbCursor = 0;
setInterval(() => {
  const n = heartbeatSeconds > 0 ? Math.ceil(held.length / heartbeatSeconds) : 0;
  for (let i = 0; i < n; i++) {
    const d = held[hbCursor++ % held.length]!;
    if (d.state === State.Done) d.proto?.heartbeat();
  }
}, 1000).unref();

const fleetStats = () => ({
  ...stats,
  distinctIds: seen.ids.size,
  duplicates: seen.duplicates,
  held: held.filter((d) => d.state === State.Done && d.socket && !d.socket.destroyed).length,
  errorsAfterBound: { ...errorsAfterBound },
  unexpected: { ...unexpected },
});
export type FleetStats = ReturnType<typeof fleetStats>;

serveRequests({
  run: (req: Request) => startRun(req.params as FleetRun),
  stats: fleetStats,
  /** A `holdBind` run's devices all send BIND now (each stays held once bound). */
  bindHeld: () => {
    for (const d of held.filter((x) => x.state === State.Done)) {
      d.state = State.Late;
      d.proto!.bind(d.userId);
    }
    return true;
  },
  /** Resets every connection (RST: neither side keeps a TIME_WAIT). */
  drop: () => {
    dropping = true;
    if (run) run.stopping = true;
    const n = held.filter((d) => d.socket && !d.socket.destroyed).length;
    for (const d of held) release(d, true);
    held.length = 0;
    return n;
  },
  /** The contents pushes will carry, for the sampled open-and-compare. */
  expectContent: (req: Request) => {
    if (typeof req.unicast === 'string') verify.unicast = Buffer.from(req.unicast, 'utf8');
    if (typeof req.broadcast === 'string') verify.broadcast = Buffer.from(req.broadcast, 'utf8');
    if (typeof req.every === 'number' && req.every > 0) verify.every = req.every;
    verify.ids = req.ids === true;
    verify.unicasts = verify.broadcasts = 0;
    return true;
  },
  /** Arms the broadcast receipt: `broadcastDone` is emitted once `expect` no-ack pushes arrived. */
  armBroadcast: (req: Request) => {
    Object.assign(broadcast, { expect: Number(req.expect), received: 0, firstAt: 0, lastAt: 0 });
    reported = broadcast.expect === 0;
    return true;
  },
  broadcastReceipt: () => receipt(),
  exit: () => {
    for (const d of held) release(d, true);
    setTimeout(() => process.exit(0), 20);
    return true;
  },
});
