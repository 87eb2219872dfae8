import type { KeyObject } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import {
  BinaryWire,
  type BinaryWireTypes,
  binaryWireSettings,
  type DeviceHandshake,
  type DeviceHost,
  type DeviceProfile,
  DeviceProtocol,
} from '../../src/client/device/index.js';
import { type Cipher, mixKey, randomKey } from '../../src/crypto/index.js';
import {
  BindUserCodec,
  Command,
  ErrorCodec,
  type ErrorMessage,
  encodePacket,
  FastConnectCodec,
  Flags,
  FrameDecoder,
  type HandshakeOkMessage,
  OkCodec,
  type OkMessage,
  type Packet,
} from '../../src/protocol/index.js';

/** One handshake of a {@link RawDevice}, run by the SDK's own protocol object over the device's socket. */
class RawHandshake implements DeviceHost<BinaryWireTypes> {
  readonly wire: BinaryWire;
  readonly protocol: DeviceProtocol<BinaryWireTypes>;
  readonly result: Promise<DeviceHandshake>;
  /** The session cipher, taken from the wire before it is reset. */
  cipher: Cipher | undefined;
  active = true;
  private settle: { resolve: (h: DeviceHandshake) => void; reject: (err: Error) => void } | undefined;

  constructor(
    private readonly socket: Socket,
    publicKey: KeyObject,
    keys: { clientKey: Buffer; iv: Buffer },
    deviceId: string,
    profile: DeviceProfile,
  ) {
    this.wire = new BinaryWire(
      binaryWireSettings({ publicKey, maxPacketSize: 16 * 1024 * 1024, handshakeKeys: () => keys }),
    );
    this.protocol = new DeviceProtocol(this.wire, this, deviceId, profile);
    this.result = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  onHandshake(h: DeviceHandshake): void {
    this.cipher = this.wire.cipher;
    this.finish();
    this.settle?.resolve(h);
  }

  onError(err: Error): void {
    this.finish();
    this.settle?.reject(err);
  }

  /** Stops at once: what follows in the same chunk is the test's to read raw (no automatic ack). */
  finish(): void {
    this.active = false;
    this.protocol.reset();
  }
}

/**
 * A device at the protocol level, for tests that need exact control of the bytes: it frames,
 * encrypts and decrypts like MPush's Java SDK, and records what the server sends. Its handshake is the
 * SDK's (DeviceProtocol over a BinaryWire); everything else is sent and read raw, so a test can send
 * what no SDK would.
 */
export class RawDevice {
  readonly socket: Socket;
  readonly packets: Packet[] = [];
  heartbeats = 0;
  cipher: Cipher | null = null;
  closed = false;
  clientKey = randomKey();
  iv = randomKey();
  private seq = 0;
  private waiters: Array<() => void> = [];
  /** While it runs, what arrives is also fed to the handshake's protocol object. */
  private handshaking: RawHandshake | undefined;
  private readonly decoder = new FrameDecoder(
    {
      onPacket: (p) => {
        // The handshake's reply is the protocol's, not a packet for the test.
        if (this.handshaking?.active && p.cmd === Command.HANDSHAKE) return;
        this.packets.push(p);
        this.wake();
      },
      onHeartbeat: () => {
        this.heartbeats++;
        this.wake();
      },
    },
    { maxBodyLength: 16 * 1024 * 1024 },
  );

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      this.decoder.push(c);
      if (this.handshaking?.active) this.handshaking.protocol.receive(c);
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawDevice> {
    return new Promise((resolve, reject) => {
      const s = connect(port, host, () => resolve(new RawDevice(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when `cond` holds, re-checked on every packet, heartbeat and close. */
  async until<T>(cond: () => T | undefined | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = cond();
      if (v) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for (and removes) the next packet with `cmd`. */
  async next(cmd: number, timeoutMs = 5000): Promise<Packet> {
    return this.until(
      () => {
        const i = this.packets.findIndex((p) => p.cmd === cmd);
        return i >= 0 ? this.packets.splice(i, 1)[0] : undefined;
      },
      timeoutMs,
      `packet cmd ${cmd}`,
    );
  }

  waitClosed(timeoutMs = 5000): Promise<true> {
    return this.until(() => this.closed || undefined, timeoutMs, 'close');
  }

  nextSessionId(): number {
    return ++this.seq;
  }

  /** Sends a packet, encrypting its body with the current cipher when `encrypt`. */
  send(
    cmd: number,
    body: Buffer,
    opts: { encrypt?: boolean; flags?: number; sessionId?: number } = {},
  ): number {
    const sessionId = opts.sessionId ?? this.nextSessionId();
    let flags = opts.flags ?? 0;
    let b = body;
    if ((opts.encrypt ?? true) && this.cipher) {
      b = this.cipher.encrypt(body);
      flags |= Flags.CRYPTO;
    }
    this.socket.write(encodePacket({ cmd, flags, sessionId, body: b }));
    return sessionId;
  }

  raw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Plain body of a received packet. */
  open(p: Packet): Buffer {
    return p.flags & Flags.CRYPTO ? this.cipher!.decrypt(p.body) : p.body;
  }

  /**
   * Full RSA handshake, like the Java SDK, with this device's `clientKey` and `iv`. Rejects when the
   * server refuses it (its ERROR stays in `packets`).
   */
  async handshake(
    publicKey: KeyObject,
    fields: { deviceId?: string; osName?: string; maxHeartbeat?: number } = {},
  ): Promise<HandshakeOkMessage> {
    const hs = new RawHandshake(
      this.socket,
      publicKey,
      { clientKey: this.clientKey, iv: this.iv },
      fields.deviceId ?? `dev-${Math.random().toString(36).slice(2)}`,
      {
        osName: fields.osName ?? 'android',
        osVersion: '10',
        clientVersion: '1.0.0',
        minHeartbeat: 0,
        maxHeartbeat: fields.maxHeartbeat ?? 240_000,
      },
    );
    this.handshaking = hs;
    this.cipher = null;
    const timer = setTimeout(() => hs.onError(new Error('timed out waiting for packet cmd 2')), 5000);
    try {
      hs.protocol.start();
      const h = await hs.result;
      this.cipher = hs.cipher ?? null;
      return {
        // mixKey is XOR: the session key mixed with the client key again gives the server key.
        serverKey: mixKey(this.clientKey, Buffer.from(h.sessionKey!, 'hex')),
        heartbeat: h.heartbeat,
        sessionId: h.sessionId,
        expireTime: h.expireTime,
      };
    } finally {
      clearTimeout(timer);
      if (this.handshaking === hs) this.handshaking = undefined;
    }
  }

  fastConnect(sessionId: string, deviceId: string, maxHeartbeat = 240_000): number {
    return this.send(
      Command.FAST_CONNECT,
      FastConnectCodec.encode({ sessionId, deviceId, minHeartbeat: 0, maxHeartbeat }),
      {
        encrypt: false,
      },
    );
  }

  /** Sends BIND and waits for its OK or ERROR. */
  async bind(userId: string, data = '', tags = ''): Promise<{ ok?: OkMessage; error?: ErrorMessage }> {
    return this.reply(this.send(Command.BIND, BindUserCodec.encode({ userId, data, tags })));
  }

  /**
   * Sends BIND as `pieces` writes a few ms apart (so the server reads its header and body in
   * separate chunks), and waits for its OK or ERROR.
   */
  async bindInPieces(userId: string, pieces: number): Promise<{ ok?: OkMessage; error?: ErrorMessage }> {
    const sessionId = this.nextSessionId();
    const body = this.cipher!.encrypt(BindUserCodec.encode({ userId, data: '', tags: '' }));
    const frame = encodePacket({ cmd: Command.BIND, flags: Flags.CRYPTO, sessionId, body });
    const step = Math.ceil(frame.length / pieces);
    for (let at = 0; at < frame.length; at += step) {
      this.socket.write(frame.subarray(at, at + step));
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.reply(sessionId);
  }

  /** The OK or ERROR answering the packet `sid`. */
  private async reply(sid: number): Promise<{ ok?: OkMessage; error?: ErrorMessage }> {
    const p = await this.until(
      () => {
        const i = this.packets.findIndex(
          (x) => (x.cmd === Command.OK || x.cmd === Command.ERROR) && x.sessionId === sid,
        );
        return i >= 0 ? this.packets.splice(i, 1)[0] : undefined;
      },
      5000,
      'bind reply',
    );
    return p.cmd === Command.OK ? { ok: OkCodec.decode(p.body) } : { error: ErrorCodec.decode(p.body) };
  }

  async unbind(userId: string): Promise<OkMessage> {
    const sid = this.send(Command.UNBIND, BindUserCodec.encode({ userId, data: '', tags: '' }));
    const p = await this.next(Command.OK);
    if (p.sessionId !== sid) throw new Error('unexpected OK');
    return OkCodec.decode(p.body);
  }

  error(p: Packet): ErrorMessage {
    return ErrorCodec.decode(p.body);
  }

  /** Stops reading: the socket's receive buffer fills and the server's writes back up. */
  pauseReading(): void {
    this.socket.pause();
  }

  close(): void {
    this.socket.destroy();
  }
}
