// A device process for bench/cluster: opens many MPush device connections, each with the full
// handshake (Handshake body RSA-encrypted with the server's public key, HandshakeOk under
// AES(clientKey, iv), then AES(clientKey ^ serverKey, iv)) and a BIND of a given userId, then holds
// them and answers every AUTO_ACK push with an ACK at once (the push body is not decrypted: the
// ACK needs only the packet's sessionId, as an SDK that acks on receipt).
//
// Lean on purpose (not the SDK), after bench/connections/client.ts: one small object per
// connection, module-level socket listeners, a FrameDecoder per connection. Forked by main.ts and
// driven over IPC: `connect` (returns when every device is bound or failed), `stats`, `drop`
// (RST every connection), `exit`.

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
import { emit, type Percentiles, percentiles, type Request, serveRequests } from './ipc.js';

/** `count` devices on host:port, bound as `<userPrefix><i>`, i = 0 … count-1. */
export interface DeviceGroup {
  host: string;
  port: number;
  count: number;
  userPrefix: string;
}

export interface ConnectParams {
  groups: DeviceGroup[];
  /** Source addresses, used in turn (each has its own ephemeral port range). */
  localAddresses: string[];
  /** Connections between "connect started" and "bound" at any time. */
  concurrency: number;
  /** Base64 X.509 SPKI of the server key. */
  publicKey: string;
  maxAttempts: number;
  proc: number;
}

export interface ConnectResult {
  proc: number;
  target: number;
  bound: number;
  failed: number;
  attempts: number;
  seconds: number;
  errors: Record<string, number>;
  bindLatencyMs: Percentiles;
}

export interface DeviceStats {
  held: number;
  lost: number;
  pushes: number;
  acks: number;
  unexpected: Record<string, number>;
  errorsAfterBound: Record<string, number>;
}

const State = { Idle: 0, Connecting: 1, Handshaking: 2, Binding: 3, Bound: 4, Failed: 5 } as const;
const HANDSHAKE_SID = 1;
const BIND_SID = 2;

class Device implements FrameHandler {
  socket: Socket | null = null;
  decoder: FrameDecoder | null = null;
  cipher: AesCipher | null = null;
  clientKey: Buffer | null = null;
  iv: Buffer | null = null;
  state: number = State.Idle;
  attempt = 0;
  lastError = '';
  t0 = 0;

  constructor(
    readonly group: DeviceGroup,
    readonly userId: string,
    readonly localAddress: string,
  ) {}

  onPacket(p: Packet): void {
    const r = run!;
    try {
      if (p.cmd === Command.PUSH && this.state === State.Bound) {
        r.pushes++;
        if (p.flags & Flags.AUTO_ACK) {
          this.socket!.write(
            encodePacket({ cmd: Command.ACK, flags: 0, sessionId: p.sessionId, body: EMPTY }),
          );
          r.acks++;
        }
        return;
      }
      if (p.cmd === Command.HANDSHAKE && this.state === State.Handshaking) return this.handshakeOk(p);
      if (p.cmd === Command.OK && p.sessionId === BIND_SID && this.state === State.Binding)
        return this.bound();
      if (p.cmd === Command.ERROR) {
        const e = ErrorCodec.decode(p.body);
        return this.fail(`ERROR cmd ${e.cmd} code ${e.code}: ${e.reason}`);
      }
      const key = `unexpected cmd ${p.cmd}`;
      r.unexpected[key] = (r.unexpected[key] ?? 0) + 1;
    } catch (err) {
      this.fail(`client decode: ${(err as Error).message}`);
    }
  }

  onHeartbeat(): void {}

  private handshakeOk(p: Packet): void {
    const body = p.flags & Flags.CRYPTO ? this.cipher!.decrypt(p.body) : p.body;
    const ok = HandshakeOkCodec.decode(body);
    this.cipher = new AesCipher(mixKey(this.clientKey!, ok.serverKey), this.iv!);
    const bind = BindUserCodec.encode({ userId: this.userId, data: '', tags: '' });
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
    const r = run!;
    r.bound++;
    r.bindLat.push(performance.now() - this.t0);
    r.inflight--;
    this.state = State.Bound;
    this.cipher = null;
    this.clientKey = null;
    this.iv = null;
    next();
  }

  connected(): void {
    const r = run!;
    this.clientKey = randomKey();
    this.iv = randomKey();
    const body = HandshakeCodec.encode({
      deviceId: `dev-${this.userId}`,
      osName: 'android',
      osVersion: '10',
      clientVersion: '1.0.0',
      iv: this.iv,
      clientKey: this.clientKey,
      minHeartbeat: 0,
      maxHeartbeat: 180_000,
      timestamp: 0,
    });
    this.cipher = new AesCipher(this.clientKey, this.iv);
    this.state = State.Handshaking;
    this.socket!.write(
      encodePacket({
        cmd: Command.HANDSHAKE,
        flags: Flags.CRYPTO,
        sessionId: HANDSHAKE_SID,
        body: rsaEncrypt(r.publicKey, body),
      }),
    );
  }

  fail(reason: string): void {
    const r = run!;
    if (this.state === State.Bound) {
      if (!r.dropping) {
        r.lost++;
        r.errorsAfterBound[reason] = (r.errorsAfterBound[reason] ?? 0) + 1;
      }
      this.state = State.Failed;
      this.socket?.destroy();
      this.socket = null;
      return;
    }
    if (this.state === State.Failed || this.state === State.Idle) return;
    r.errors[reason] = (r.errors[reason] ?? 0) + 1;
    r.inflight--;
    this.socket?.destroy();
    this.socket = null;
    this.decoder = null;
    if (this.attempt < r.params.maxAttempts) {
      this.state = State.Idle;
      r.retry.push(this);
    } else {
      this.state = State.Failed;
      r.failed++;
    }
    next();
  }

  start(): void {
    const r = run!;
    this.attempt++;
    r.attempts++;
    this.state = State.Connecting;
    this.t0 = performance.now();
    this.lastError = '';
    this.decoder = new FrameDecoder(this);
    openLeanSocket(this, { host: this.group.host, port: this.group.port, localAddress: this.localAddress });
  }
}

const EMPTY = Buffer.alloc(0);

interface Run {
  params: ConnectParams;
  publicKey: KeyObject;
  devices: Device[];
  retry: Device[];
  nextIdx: number;
  inflight: number;
  bound: number;
  failed: number;
  lost: number;
  attempts: number;
  pushes: number;
  acks: number;
  errors: Record<string, number>;
  errorsAfterBound: Record<string, number>;
  unexpected: Record<string, number>;
  bindLat: number[];
  startedAt: number;
  dropping: boolean;
  finished: boolean;
  resolve: (r: ConnectResult) => void;
}

let run: Run | null = null;

function next(): void {
  const r = run!;
  while (r.inflight < r.params.concurrency) {
    const dev = r.retry.pop() ?? (r.nextIdx < r.devices.length ? r.devices[r.nextIdx++] : undefined);
    if (!dev) break;
    r.inflight++;
    dev.start();
  }
  if (!r.finished && r.inflight === 0 && r.retry.length === 0 && r.nextIdx >= r.devices.length) {
    r.finished = true;
    r.resolve({
      proc: r.params.proc,
      target: r.devices.length,
      bound: r.bound,
      failed: r.failed,
      attempts: r.attempts,
      seconds: (performance.now() - r.startedAt) / 1000,
      errors: { ...r.errors },
      bindLatencyMs: percentiles(Float64Array.from(r.bindLat)),
    });
  }
}

function startRun(params: ConnectParams): Promise<ConnectResult> {
  return new Promise((resolve) => {
    const devices: Device[] = [];
    let k = 0;
    // Interleave the groups, so each node's share ramps up at the same time.
    const longest = Math.max(0, ...params.groups.map((g) => g.count));
    for (let i = 0; i < longest; i++) {
      for (const g of params.groups) {
        if (i >= g.count) continue;
        const addr = params.localAddresses[k++ % params.localAddresses.length]!;
        devices.push(new Device(g, `${g.userPrefix}${i}`, addr));
      }
    }
    run = {
      params,
      publicKey: loadPublicKey(params.publicKey),
      devices,
      retry: [],
      nextIdx: 0,
      inflight: 0,
      bound: 0,
      failed: 0,
      lost: 0,
      attempts: 0,
      pushes: 0,
      acks: 0,
      errors: {},
      errorsAfterBound: {},
      unexpected: {},
      bindLat: [],
      startedAt: performance.now(),
      dropping: false,
      finished: false,
      resolve,
    };
    next();
  });
}

// Idle devices send a heartbeat now and then, so a long hold never reaches the read timeout.
setInterval(() => {
  for (const d of run?.devices ?? []) if (d.state === State.Bound) d.socket?.write(HEARTBEAT_FRAME);
}, 60_000).unref();

serveRequests({
  connect: (req: Request) => startRun(req.params as ConnectParams),
  stats: (): DeviceStats => {
    const r = run;
    if (!r) return { held: 0, lost: 0, pushes: 0, acks: 0, unexpected: {}, errorsAfterBound: {} };
    let held = 0;
    for (const d of r.devices) if (d.state === State.Bound && d.socket && !d.socket.destroyed) held++;
    return {
      held,
      lost: r.lost,
      pushes: r.pushes,
      acks: r.acks,
      unexpected: { ...r.unexpected },
      errorsAfterBound: { ...r.errorsAfterBound },
    };
  },
  /** Resets every connection (RST: neither side keeps a TIME_WAIT). */
  drop: () => {
    const r = run;
    if (!r) return 0;
    r.dropping = true;
    let n = 0;
    for (const d of r.devices) {
      if (d.socket && !d.socket.destroyed) {
        d.socket.resetAndDestroy();
        n++;
      }
      d.socket = null;
    }
    return n;
  },
  exit: () => {
    setTimeout(() => process.exit(0), 20);
    return true;
  },
});
emit('ready');
