import type { KeyObject } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { AesCipher, type Cipher, mixKey, RsaClientCipher, randomKey } from '../../src/crypto/index.js';
import {
  BindUserCodec,
  Command,
  ErrorCodec,
  type ErrorMessage,
  encodePacket,
  FastConnectCodec,
  Flags,
  FrameDecoder,
  HandshakeCodec,
  HandshakeOkCodec,
  type HandshakeOkMessage,
  OkCodec,
  type OkMessage,
  type Packet,
} from '../../src/protocol/index.js';

/**
 * A device at the protocol level, for tests that need exact control of the bytes: it frames,
 * encrypts and decrypts like MPush's Java SDK, and records what the server sends.
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
  private readonly decoder = new FrameDecoder(
    {
      onPacket: (p) => {
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
    socket.on('data', (c) => this.decoder.push(c));
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

  /** Full RSA handshake, like the Java SDK. */
  async handshake(
    publicKey: KeyObject,
    fields: { deviceId?: string; osName?: string; maxHeartbeat?: number } = {},
  ): Promise<HandshakeOkMessage> {
    this.cipher = new RsaClientCipher(publicKey);
    const body = HandshakeCodec.encode({
      deviceId: fields.deviceId ?? `dev-${Math.random().toString(36).slice(2)}`,
      osName: fields.osName ?? 'android',
      osVersion: '10',
      clientVersion: '1.0.0',
      iv: this.iv,
      clientKey: this.clientKey,
      minHeartbeat: 0,
      maxHeartbeat: fields.maxHeartbeat ?? 240_000,
      timestamp: 0,
    });
    this.send(Command.HANDSHAKE, body);
    this.cipher = new AesCipher(this.clientKey, this.iv);
    const reply = await this.next(Command.HANDSHAKE);
    const ok = HandshakeOkCodec.decode(this.open(reply));
    this.cipher = new AesCipher(mixKey(this.clientKey, ok.serverKey), this.iv);
    return ok;
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
    const sid = this.send(Command.BIND, BindUserCodec.encode({ userId, data, tags }));
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
