// A device process: holds a share of the bench's device connections to the node under test and
// answers their pushes. Forked by bench/push/main.ts, driven over IPC.
//
// Lean on purpose (not the SDK): one small object per connection, module-level socket listeners
// that find it through a symbol, one FrameDecoder per connection. Each device connects, does the
// full handshake as MPush's Java SDK does (Handshake body RSA-encrypted with the server's public
// key; HandshakeOk under AES(clientKey, iv); then AES(clientKey ^ serverKey, iv)), binds the user
// `user-<global index>` and then:
//   - a PUSH asking AUTO_ACK (or BIZ_ACK) is answered at once with a raw ACK (empty body, the
//     push's sessionId, mpush-wire §12) and counted;
//   - a PUSH asking no ack (the broadcast) is counted and its receipt time (Date.now(): the
//     processes share the machine's clock) kept; when the process has seen as many as the
//     driver said to expect it reports `broadcastDone`;
//   - one push in `verifyEvery` (and the first of each kind) is decrypted and compared with the
//     content the driver announced, so the figures are for pushes that really arrive intact.
// A heartbeat byte goes out on each connection every ~120 s (spread over the interval), so a long
// run is not cut by the server's read timeout.

import type { KeyObject } from 'node:crypto';
import type { Socket } from 'node:net';
import { AesCipher, loadPublicKey, mixKey, randomKey, rsaEncrypt } from '../../src/crypto/index.js';
import {
  BindUserCodec,
  Command,
  ErrorCodec,
  encodePacket,
  Flags,
  FrameDecoder,
  type FrameHandler,
  HandshakeCodec,
  HandshakeOkCodec,
  HEARTBEAT_FRAME,
  type Packet,
} from '../../src/protocol/index.js';
import { openLeanSocket } from '../common/lean-socket.js';
import { emit, type Request, serveRequests, watchLoop } from './ipc.js';

export interface ConnectParams {
  host: string;
  port: number;
  /** Base64 X.509 SPKI of the server key. */
  publicKey: string;
  /** Global user indices [from, to) this call connects (userId `user-<i>`). */
  from: number;
  to: number;
  concurrency: number;
  localAddress: string;
  maxAttempts: number;
}

export interface ConnectResult {
  target: number;
  bound: number;
  failed: number;
  attempts: number;
  seconds: number;
  errors: Record<string, number>;
}

export interface DeviceCounts {
  proc: number;
  devices: number;
  bound: number;
  /** Connections the server closed (or that failed) after they were bound. */
  lost: number;
  /** PUSH packets that asked for an ack, and the ACKs written for them. */
  ackedPushes: number;
  acksSent: number;
  /** PUSH packets that asked for none (broadcasts). */
  noAckPushes: number;
  verified: number;
  corrupt: number;
  heartbeatsSent: number;
  heartbeatsEchoed: number;
  unexpected: Record<string, number>;
}

export interface BroadcastReceipt {
  proc: number;
  expect: number;
  received: number;
  firstAt: number;
  lastAt: number;
}

const State = { Connecting: 0, Handshaking: 1, Binding: 2, Bound: 3, Failed: 4 } as const;
const HANDSHAKE_SID = 1;
const BIND_SID = 2;
const EMPTY = Buffer.alloc(0);
const ACK_MASK = Flags.AUTO_ACK | Flags.BIZ_ACK;

// ---- process-wide state ------------------------------------------------------------------------------

const proc = Number(process.env.BENCH_PUSH_PROC ?? 0);
const devices: Device[] = [];
const counts: DeviceCounts = {
  proc,
  devices: 0,
  bound: 0,
  lost: 0,
  ackedPushes: 0,
  acksSent: 0,
  noAckPushes: 0,
  verified: 0,
  corrupt: 0,
  heartbeatsSent: 0,
  heartbeatsEchoed: 0,
  unexpected: {},
};
const verify = {
  every: 64,
  unicast: EMPTY,
  broadcast: EMPTY,
  seenUnicast: 0,
  seenBroadcast: 0,
};
const broadcast = { expect: 0, received: 0, firstAt: 0, lastAt: 0, reported: true };

interface Ramp {
  params: ConnectParams;
  publicKey: KeyObject;
  next: number;
  inflight: number;
  retry: Device[];
  result: ConnectResult;
  startedAt: number;
  done: (r: ConnectResult) => void;
}
let ramp: Ramp | null = null;

function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

// ---- one device -------------------------------------------------------------------------------------

class Device implements FrameHandler {
  socket: Socket | null = null;
  decoder: FrameDecoder | null = null;
  cipher: AesCipher | null = null;
  clientKey: Buffer | null = null;
  iv: Buffer | null = null;
  state: number = State.Connecting;
  attempt = 0;
  lastError = '';

  constructor(readonly idx: number) {}

  onPacket(p: Packet): void {
    if (this.state === State.Bound && p.cmd === Command.PUSH) {
      if (p.flags & ACK_MASK) {
        // Raw ACK at once: cmd ACK, no flags, the push's sessionId, empty body.
        this.socket!.write(encodePacket({ cmd: Command.ACK, flags: 0, sessionId: p.sessionId, body: EMPTY }));
        counts.ackedPushes++;
        counts.acksSent++;
        if (verify.seenUnicast++ % verify.every === 0) this.check(p, verify.unicast);
      } else {
        const now = Date.now();
        counts.noAckPushes++;
        if (broadcast.received++ === 0) broadcast.firstAt = now;
        broadcast.lastAt = now;
        if (verify.seenBroadcast++ % verify.every === 0) this.check(p, verify.broadcast);
        if (!broadcast.reported && broadcast.received >= broadcast.expect) {
          broadcast.reported = true;
          emit('broadcastDone', { ...receipt() });
        }
      }
      return;
    }
    try {
      if (p.cmd === Command.HANDSHAKE && this.state === State.Handshaking) return this.handshakeOk(p);
      if (p.cmd === Command.OK && p.sessionId === BIND_SID && this.state === State.Binding)
        return this.bound();
      if (p.cmd === Command.ERROR) {
        const e = ErrorCodec.decode(p.body);
        return this.fail(`ERROR cmd ${e.cmd} code ${e.code}: ${e.reason}`);
      }
      bump(counts.unexpected, `cmd ${p.cmd} in state ${this.state}`);
    } catch (err) {
      this.fail(`client decode: ${(err as Error).message}`);
    }
  }

  onHeartbeat(): void {
    counts.heartbeatsEchoed++;
  }

  /** Decrypts a push and compares it with the announced content (when one was announced). */
  private check(p: Packet, expected: Buffer): void {
    if (expected.length === 0) return;
    try {
      const plain = p.flags & Flags.CRYPTO ? this.cipher!.decrypt(p.body) : p.body;
      if (plain.equals(expected)) counts.verified++;
      else counts.corrupt++;
    } catch {
      counts.corrupt++;
    }
  }

  connected(): void {
    const r = ramp!;
    this.clientKey = randomKey();
    this.iv = randomKey();
    const body = HandshakeCodec.encode({
      deviceId: `bench-push-${this.idx}`,
      osName: 'android',
      osVersion: '10',
      clientVersion: '1.0.0',
      iv: this.iv,
      clientKey: this.clientKey,
      minHeartbeat: 0,
      maxHeartbeat: 180_000,
      timestamp: 0,
    });
    const sealed = rsaEncrypt(r.publicKey, body);
    this.cipher = new AesCipher(this.clientKey, this.iv);
    this.state = State.Handshaking;
    this.socket!.write(
      encodePacket({ cmd: Command.HANDSHAKE, flags: Flags.CRYPTO, sessionId: HANDSHAKE_SID, body: sealed }),
    );
  }

  private handshakeOk(p: Packet): void {
    const body = p.flags & Flags.CRYPTO ? this.cipher!.decrypt(p.body) : p.body;
    const ok = HandshakeOkCodec.decode(body);
    this.cipher = new AesCipher(mixKey(this.clientKey!, ok.serverKey), this.iv!);
    this.clientKey = null;
    this.iv = null;
    const bind = BindUserCodec.encode({ userId: `user-${this.idx}`, data: '', tags: '' });
    this.state = State.Binding;
    this.socket!.write(
      encodePacket({
        cmd: Command.BIND,
        flags: Flags.CRYPTO,
        sessionId: BIND_SID,
        body: this.cipher.encrypt(bind),
      }),
    );
  }

  private bound(): void {
    const r = ramp!;
    this.state = State.Bound;
    counts.bound++;
    r.result.bound++;
    r.inflight--;
    next();
  }

  fail(reason: string): void {
    if (this.state === State.Failed) return;
    if (this.state === State.Bound) {
      counts.lost++;
      counts.bound--;
      bump(counts.unexpected, `lost: ${reason}`);
      this.state = State.Failed;
      this.socket?.destroy();
      this.socket = null;
      return;
    }
    const r = ramp!;
    bump(r.result.errors, reason);
    r.inflight--;
    this.socket?.destroy();
    this.socket = null;
    this.decoder = null;
    if (this.attempt < r.params.maxAttempts) {
      r.retry.push(this);
    } else {
      this.state = State.Failed;
      r.result.failed++;
    }
    next();
  }

  start(): void {
    const r = ramp!;
    this.attempt++;
    r.result.attempts++;
    this.state = State.Connecting;
    this.lastError = '';
    this.decoder = new FrameDecoder(this);
    openLeanSocket(this, { host: r.params.host, port: r.params.port, localAddress: r.params.localAddress });
  }
}

/** Starts connections while below the concurrency bound; settles the ramp when all are done. */
function next(): void {
  const r = ramp;
  if (!r) return;
  while (r.inflight < r.params.concurrency) {
    let dev = r.retry.pop();
    if (!dev) {
      if (r.next >= r.params.to) break;
      dev = new Device(r.next++);
      devices.push(dev);
      counts.devices++;
    }
    r.inflight++;
    dev.start();
  }
  if (r.inflight === 0 && r.retry.length === 0 && r.next >= r.params.to) {
    ramp = null;
    r.result.seconds = (Date.now() - r.startedAt) / 1000;
    r.done(r.result);
  }
}

function connectRange(params: ConnectParams): Promise<ConnectResult> {
  if (ramp) return Promise.reject(new Error('a connect is already running'));
  return new Promise((done) => {
    ramp = {
      params,
      publicKey: loadPublicKey(params.publicKey),
      next: params.from,
      inflight: 0,
      retry: [],
      result: { target: params.to - params.from, bound: 0, failed: 0, attempts: 0, seconds: 0, errors: {} },
      startedAt: Date.now(),
      done,
    };
    next();
  });
}

function receipt(): BroadcastReceipt {
  return {
    proc,
    expect: broadcast.expect,
    received: broadcast.received,
    firstAt: broadcast.firstAt,
    lastAt: broadcast.lastAt,
  };
}

// Heartbeats: every device once per ~120 s, a slice each second.
const HEARTBEAT_PERIOD_S = 120;
let hbCursor = 0;
setInterval(() => {
  const n = Math.ceil(devices.length / HEARTBEAT_PERIOD_S);
  for (let i = 0; i < n && devices.length > 0; i++) {
    const d = devices[hbCursor++ % devices.length]!;
    if (d.state === State.Bound && d.socket) {
      d.socket.write(HEARTBEAT_FRAME);
      counts.heartbeatsSent++;
    }
  }
}, 1000).unref();

const loop = watchLoop();
serveRequests({
  loop: () => loop.take(),
  connect: (req: Request) => connectRange(req.params as ConnectParams),
  /** The contents pushes will carry, for the sampled decrypt-and-compare. */
  expectContent: (req: Request) => {
    if (typeof req.unicast === 'string') verify.unicast = Buffer.from(req.unicast, 'utf8');
    if (typeof req.broadcast === 'string') verify.broadcast = Buffer.from(req.broadcast, 'utf8');
    if (typeof req.every === 'number' && req.every > 0) verify.every = req.every;
    verify.seenBroadcast = 0;
    verify.seenUnicast = 0;
    return true;
  },
  counts: () => ({ ...counts, unexpected: { ...counts.unexpected } }),
  /** Arms the broadcast receipt: `broadcastDone` is emitted once `expect` no-ack pushes arrived. */
  armBroadcast: (req: Request) => {
    broadcast.expect = Number(req.expect);
    broadcast.received = 0;
    broadcast.firstAt = 0;
    broadcast.lastAt = 0;
    broadcast.reported = broadcast.expect === 0;
    return true;
  },
  broadcastReceipt: () => receipt(),
  /**
   * The floor probe: `rounds` times, every bound device writes one heartbeat byte and the round
   * ends when the server has echoed them all (one read and one write per device on the server).
   */
  heartbeatRounds: async (req: Request) => {
    const rounds = Number(req.rounds);
    const t0 = Date.now();
    let sent = 0;
    const echoed0 = counts.heartbeatsEchoed;
    for (let r = 0; r < rounds; r++) {
      const target = counts.heartbeatsEchoed + devices.filter((d) => d.state === State.Bound).length;
      for (const d of devices) {
        if (d.state !== State.Bound || !d.socket) continue;
        d.socket.write(HEARTBEAT_FRAME);
        sent++;
      }
      const deadline = Date.now() + 10_000;
      while (counts.heartbeatsEchoed < target && Date.now() < deadline)
        await new Promise((res) => setTimeout(res, 1));
    }
    return { sent, echoed: counts.heartbeatsEchoed - echoed0, ms: Date.now() - t0 };
  },
  cpu: () => process.cpuUsage(),
  exit: () => {
    for (const d of devices) d.socket?.resetAndDestroy();
    setTimeout(() => process.exit(0), 20);
    return true;
  },
});
emit('ready', { proc });
