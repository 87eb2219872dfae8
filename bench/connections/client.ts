// A bench client process: opens many device connections to the server under test and holds them.
// Forked by bench/connections/main.ts, driven over IPC.
//
// Lean on purpose (not the SDK): one small object per connection, module-level socket listeners
// that find it through a symbol, a FrameDecoder per connection. Modes:
//   mpush  connect, full handshake (Handshake body RSA-encrypted with the server's public key,
//          HandshakeOk under AES(clientKey, iv), then AES(clientKey ^ serverKey, iv)), BIND a unique
//          userId, hold the connection idle.
//   churn  connect, full handshake, then reset the connection (RST: no TIME_WAIT) and start the
//          next one, for a fixed time: handshakes/s with no bind and nothing held.
//   bare   connect, write a few bytes, hold: the load for bare-server.ts.
// At most `concurrency` connections are between "connect started" and "done" at any time.

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
  type Packet,
} from '../../src/protocol/index.js';
import { openLeanSocket } from '../common/lean-socket.js';
import { emit, epochMs, type Request, serveRequests } from './ipc.js';

export type ClientMode = 'mpush' | 'churn' | 'bare';

export interface ClientRunParams {
  mode: ClientMode;
  host: string;
  port: number;
  /** Connections to hold (mpush, bare). */
  count: number;
  concurrency: number;
  /** Base64 X.509 SPKI of the server key (mpush, churn). */
  publicKey: string;
  localAddress: string;
  /** This process's index, used in deviceIds and userIds. */
  proc: number;
  /** Churn only: how long to keep starting handshakes. */
  durationMs: number;
  /** Tries per connection before it counts as failed. */
  maxAttempts: number;
  /** Bare only: bytes written after connecting. */
  barePayloadBytes: number;
}

/** Percentiles in milliseconds. */
export interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface ClientResult {
  proc: number;
  mode: ClientMode;
  localAddress: string;
  target: number;
  connected: number;
  handshaked: number;
  bound: number;
  failed: number;
  attempts: number;
  errors: Record<string, number>;
  startedAt: number;
  finishedAt: number;
  latencyMs: { connect: Percentiles; handshake: Percentiles; bind: Percentiles; total: Percentiles };
  /** Epoch ms of every completion (bound, or handshake in churn), for the driver's rate figures. */
  completions: number[];
}

const State = { Connecting: 0, Handshaking: 1, Binding: 2, Done: 3, Failed: 4 } as const;
const HANDSHAKE_SID = 1;
const BIND_SID = 2;

class Device implements FrameHandler {
  socket: Socket | null = null;
  decoder: FrameDecoder | null = null;
  cipher: AesCipher | null = null;
  clientKey: Buffer | null = null;
  iv: Buffer | null = null;
  state: number = State.Connecting;
  attempt = 0;
  lastError = '';
  t0 = 0;
  tConnected = 0;
  tHandshakeSent = 0;
  tBindSent = 0;

  constructor(readonly idx: number) {}

  onPacket(p: Packet): void {
    const r = run!;
    try {
      if (p.cmd === Command.HANDSHAKE && this.state === State.Handshaking) return this.handshakeOk(p);
      if (p.cmd === Command.OK && p.sessionId === BIND_SID && this.state === State.Binding)
        return this.bound();
      if (p.cmd === Command.ERROR) {
        const e = ErrorCodec.decode(p.body);
        this.fail(`ERROR cmd ${e.cmd} code ${e.code}: ${e.reason}`);
        return;
      }
      const key = `unexpected cmd ${p.cmd}`;
      r.unexpected[key] = (r.unexpected[key] ?? 0) + 1;
    } catch (err) {
      this.fail(`client decode: ${(err as Error).message}`);
    }
  }

  onHeartbeat(): void {
    run!.heartbeats++;
  }

  private handshakeOk(p: Packet): void {
    const r = run!;
    const now = epochMs();
    const body = p.flags & Flags.CRYPTO ? this.cipher!.decrypt(p.body) : p.body;
    const ok = HandshakeOkCodec.decode(body);
    r.handshaked++;
    r.lat.handshake.push(now - this.tHandshakeSent);
    if (r.params.mode === 'churn') {
      r.lat.total.push(now - this.t0);
      r.completions.push(now);
      r.inflight--;
      this.state = State.Done;
      this.release();
      this.socket?.resetAndDestroy();
      this.socket = null;
      return next();
    }
    this.cipher = new AesCipher(mixKey(this.clientKey!, ok.serverKey), this.iv!);
    const bind = BindUserCodec.encode({ userId: `user-${r.params.proc}-${this.idx}`, data: '', tags: '' });
    this.state = State.Binding;
    this.tBindSent = epochMs();
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
    const r = run!;
    const now = epochMs();
    r.bound++;
    r.lat.bind.push(now - this.tBindSent);
    r.lat.total.push(now - this.t0);
    r.completions.push(now);
    r.inflight--;
    this.state = State.Done;
    // Held idle from here: the keys are no longer needed.
    this.cipher = null;
    this.clientKey = null;
    this.iv = null;
    next();
  }

  connected(): void {
    const r = run!;
    const now = epochMs();
    r.connected++;
    this.tConnected = now;
    r.lat.connect.push(now - this.t0);
    const s = this.socket!;
    if (r.params.mode === 'bare') {
      s.write(r.barePayload);
      r.bound++;
      r.lat.total.push(now - this.t0);
      r.completions.push(now);
      r.inflight--;
      this.state = State.Done;
      return next();
    }
    this.clientKey = randomKey();
    this.iv = randomKey();
    const body = HandshakeCodec.encode({
      deviceId: `bench-${r.params.proc}-${this.idx}`,
      osName: 'android',
      osVersion: '10',
      clientVersion: '1.0.0',
      iv: this.iv,
      clientKey: this.clientKey,
      minHeartbeat: 0,
      maxHeartbeat: 180_000,
      timestamp: 0,
    });
    const sealed = rsaEncrypt(r.publicKey!, body);
    this.cipher = new AesCipher(this.clientKey, this.iv);
    this.state = State.Handshaking;
    this.tHandshakeSent = epochMs();
    s.write(
      encodePacket({ cmd: Command.HANDSHAKE, flags: Flags.CRYPTO, sessionId: HANDSHAKE_SID, body: sealed }),
    );
  }

  /** This attempt failed: drop the socket and retry, or count the connection failed. */
  fail(reason: string): void {
    const r = run!;
    if (this.state === State.Done || this.state === State.Failed) {
      // A held connection that the server closed or errored.
      if (this.state === State.Done && r.params.mode !== 'churn' && !r.dropping) {
        r.errors[`after done: ${reason}`] = (r.errors[`after done: ${reason}`] ?? 0) + 1;
        r.lost++;
        this.state = State.Failed;
      }
      return;
    }
    r.errors[reason] = (r.errors[reason] ?? 0) + 1;
    r.inflight--;
    this.release();
    this.socket?.destroy();
    this.socket = null;
    if (this.attempt < r.params.maxAttempts && !r.stopping) {
      r.retry.push(this);
    } else {
      this.state = State.Failed;
      r.failed++;
    }
    next();
  }

  private release(): void {
    this.decoder = null;
    this.cipher = null;
  }

  start(): void {
    const r = run!;
    this.attempt++;
    r.attempts++;
    this.state = State.Connecting;
    this.t0 = epochMs();
    if (r.params.mode !== 'bare') this.decoder = new FrameDecoder(this);
    openLeanSocket(this, { host: r.params.host, port: r.params.port, localAddress: r.params.localAddress });
  }
}

interface Run {
  params: ClientRunParams;
  publicKey: KeyObject | null;
  barePayload: Buffer;
  devices: Device[];
  retry: Device[];
  nextIdx: number;
  inflight: number;
  connected: number;
  handshaked: number;
  bound: number;
  failed: number;
  lost: number;
  attempts: number;
  heartbeats: number;
  errors: Record<string, number>;
  unexpected: Record<string, number>;
  lat: { connect: number[]; handshake: number[]; bind: number[]; total: number[] };
  completions: number[];
  startedAt: number;
  deadline: number;
  stopping: boolean;
  dropping: boolean;
  finished: boolean;
  resolve: (r: ClientResult) => void;
}

let run: Run | null = null;

/** Starts connections while below the concurrency bound; settles the run when all are done. */
function next(): void {
  const r = run!;
  const mode = r.params.mode;
  if (mode === 'churn' && epochMs() >= r.deadline) r.stopping = true;
  while (!r.stopping && r.inflight < r.params.concurrency) {
    let dev = r.retry.pop();
    if (!dev) {
      if (mode === 'churn') {
        dev = new Device(r.nextIdx++);
      } else if (r.nextIdx < r.params.count) {
        dev = new Device(r.nextIdx++);
        r.devices.push(dev);
      } else {
        break;
      }
    }
    r.inflight++;
    dev.start();
  }
  const settled = r.inflight === 0 && (r.stopping || (r.nextIdx >= r.params.count && r.retry.length === 0));
  if (settled && !r.finished) {
    r.finished = true;
    r.resolve(result(r));
  }
}

function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { n: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const v = Float64Array.from(values).sort();
  const at = (q: number) => Math.round(v[Math.min(v.length - 1, Math.floor(q * v.length))]! * 100) / 100;
  return {
    n: v.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: Math.round(v[v.length - 1]! * 100) / 100,
  };
}

function result(r: Run): ClientResult {
  return {
    proc: r.params.proc,
    mode: r.params.mode,
    localAddress: r.params.localAddress,
    target: r.params.mode === 'churn' ? r.nextIdx : r.params.count,
    connected: r.connected,
    handshaked: r.handshaked,
    bound: r.bound,
    failed: r.failed,
    attempts: r.attempts,
    errors: { ...r.errors, ...r.unexpected },
    startedAt: r.startedAt,
    finishedAt: epochMs(),
    latencyMs: {
      connect: percentiles(r.lat.connect),
      handshake: percentiles(r.lat.handshake),
      bind: percentiles(r.lat.bind),
      total: percentiles(r.lat.total),
    },
    completions: r.completions,
  };
}

function startRun(params: ClientRunParams): Promise<ClientResult> {
  return new Promise((resolve) => {
    run = {
      params,
      publicKey: params.mode === 'bare' ? null : loadPublicKey(params.publicKey),
      barePayload: Buffer.alloc(params.barePayloadBytes, 0x42),
      devices: [],
      retry: [],
      nextIdx: 0,
      inflight: 0,
      connected: 0,
      handshaked: 0,
      bound: 0,
      failed: 0,
      lost: 0,
      attempts: 0,
      heartbeats: 0,
      errors: {},
      unexpected: {},
      lat: { connect: [], handshake: [], bind: [], total: [] },
      completions: [],
      startedAt: epochMs(),
      deadline: epochMs() + params.durationMs,
      stopping: false,
      dropping: false,
      finished: false,
      resolve,
    };
    if (params.mode === 'churn') {
      // Stop starting new handshakes at the deadline even if no completion wakes us.
      setTimeout(() => next(), params.durationMs + 1).unref();
    }
    next();
  });
}

serveRequests({
  run: (req: Request) => startRun(req.params as ClientRunParams),
  progress: () => {
    const r = run;
    return r ? { connected: r.connected, handshaked: r.handshaked, bound: r.bound, failed: r.failed } : null;
  },
  cpu: () => process.cpuUsage(),
  /** Held connections still open (not closed by the server since they were done). */
  held: () => {
    const r = run;
    if (!r) return { held: 0, lost: 0, heartbeats: 0, unexpected: {} };
    let held = 0;
    for (const d of r.devices) if (d.state === State.Done && d.socket && !d.socket.destroyed) held++;
    return { held, lost: r.lost, heartbeats: r.heartbeats, unexpected: r.unexpected };
  },
  /** Resets every held connection (RST, so neither side keeps a TIME_WAIT). */
  drop: () => {
    const r = run;
    if (!r) return 0;
    r.dropping = true;
    r.stopping = true;
    let n = 0;
    for (const d of r.devices) {
      if (d.socket && !d.socket.destroyed) {
        d.socket.resetAndDestroy();
        n++;
      }
      d.socket = null;
    }
    r.devices = [];
    return n;
  },
  exit: () => {
    setTimeout(() => process.exit(0), 20);
    return true;
  },
});
emit('ready');
