// The MPush binary wire of a device (mpush-wire §1–§7): 13-byte frames and 0xDF heartbeats through
// the streaming FrameDecoder, the Handshake body under the server's RSA key, HandshakeOk under
// AES(clientKey, iv), everything after under AES(clientKey ^ serverKey, iv), zlib past a threshold.
// Node only (node:crypto, node:zlib through crypto/).

import type { KeyObject } from 'node:crypto';
import {
  AesCipher,
  type Cipher,
  deflate,
  inflate,
  loadPublicKey,
  mixKey,
  randomKey,
  rsaEncrypt,
} from '../../crypto/index.js';
import {
  BindUserCodec,
  Command,
  ErrorCodec,
  encodePacket,
  FastConnectCodec,
  FastConnectOkCodec,
  Flags,
  FrameDecoder,
  type FrameHandler,
  HandshakeCodec,
  HandshakeOkCodec,
  HEARTBEAT_FRAME,
  HttpRequestCodec,
  HttpResponseCodec,
  KickCodec,
  OkCodec,
  type Packet,
} from '../../protocol/index.js';
import type {
  DeviceProfile,
  DeviceWire,
  ResumeSession,
  WireHandler,
  WireHttpRequest,
  WireTypes,
} from './device-protocol.js';

/** The binary wire's types: bytes in and out, undecoded packets as the frame decoder gives them. */
export interface BinaryWireTypes extends WireTypes {
  frame: Buffer;
  packet: Packet;
  content: Buffer;
}

/** The AES key and iv a device chooses for its handshake (mpush-wire §5 step 2). */
export interface HandshakeKeys {
  clientKey: Buffer;
  iv: Buffer;
}

/** Options of {@link binaryWireSettings}. */
export interface BinaryWireOptions {
  /**
   * The server's RSA public key: base64 of the X.509 SubjectPublicKeyInfo DER (what MPush SDKs are
   * configured with), PEM, or a loaded key. Needed for a full handshake.
   */
  publicKey?: string | KeyObject;
  /** Largest packet body accepted from the server. Default 1 MiB. */
  maxPacketSize?: number;
  /** Largest inflated body of a COMPRESS packet (decompression bombs). Default 4 MiB. */
  maxInflateBytes?: number;
  /** Bodies longer than this are zlib-compressed before encryption. Default 1024 (the Java SDK's). */
  compressThreshold?: number;
  /** Where handshake keys come from. Default: 16 random bytes each. Tests pin them to known vectors. */
  handshakeKeys?: () => HandshakeKeys;
}

/** Resolved settings, shared by every wire of a client or a fleet. */
export interface BinaryWireSettings {
  readonly publicKey: KeyObject | undefined;
  readonly maxPacketSize: number;
  readonly maxInflateBytes: number;
  readonly compressThreshold: number;
  readonly handshakeKeys: (() => HandshakeKeys) | undefined;
}

/** Resolves options once, for any number of {@link BinaryWire}s. */
export function binaryWireSettings(options: BinaryWireOptions = {}): BinaryWireSettings {
  const key = options.publicKey;
  return Object.freeze({
    publicKey: typeof key === 'string' ? loadPublicKey(key) : key,
    maxPacketSize: options.maxPacketSize ?? 1024 * 1024,
    maxInflateBytes: options.maxInflateBytes ?? 4 * 1024 * 1024,
    compressThreshold: options.compressThreshold ?? 1024,
    handshakeKeys: options.handshakeKeys,
  });
}

const EMPTY = Buffer.alloc(0);

/**
 * One connection's binary wire. It keeps only what the connection needs: the cipher once keys are
 * agreed, the handshake keys while a handshake is in flight, and a frame decoder created on the first
 * input.
 */
export class BinaryWire implements DeviceWire<BinaryWireTypes>, FrameHandler {
  /** The connection's current cipher: none, AES(clientKey, iv) during the handshake, then the session's. */
  cipher: Cipher | undefined;
  readonly settings: BinaryWireSettings;
  private handler: WireHandler<BinaryWireTypes> | undefined;
  private decoder: FrameDecoder | undefined;
  /** The keys of a full handshake in flight. */
  private clientKey: Buffer | undefined;
  private iv: Buffer | undefined;

  constructor(settings: BinaryWireSettings) {
    this.settings = settings;
  }

  get heartbeatFrame(): Buffer {
    return HEARTBEAT_FRAME;
  }

  attach(handler: WireHandler<BinaryWireTypes>): void {
    this.handler = handler;
  }

  receive(chunk: Buffer): void {
    let decoder = this.decoder;
    if (decoder === undefined) {
      decoder = new FrameDecoder(this, { maxBodyLength: this.settings.maxPacketSize });
      this.decoder = decoder;
    }
    try {
      decoder.push(chunk);
    } catch (err) {
      // Only framing errors get here: onPacket reports its own.
      this.handler!.receivedBadInput(err, true);
    }
  }

  /** @internal FrameHandler */
  onHeartbeat(): void {
    this.handler!.receivedHeartbeat();
  }

  /** @internal FrameHandler */
  onPacket(p: Packet): void {
    const h = this.handler!;
    try {
      switch (p.cmd) {
        case Command.PUSH:
          h.receivedPush(p.body, p.sessionId, p.flags);
          break;
        case Command.OK: {
          const m = OkCodec.decode(this.open(p.body, p.flags));
          h.receivedOk({ cmd: m.cmd, code: m.code, data: m.data, sessionId: p.sessionId });
          break;
        }
        case Command.ERROR: {
          const m = ErrorCodec.decode(this.open(p.body, p.flags));
          h.receivedError({
            cmd: m.cmd,
            code: m.code,
            reason: m.reason,
            data: m.data,
            sessionId: p.sessionId,
          });
          break;
        }
        case Command.ACK:
          h.receivedAck(p.sessionId);
          break;
        case Command.KICK: {
          const m = KickCodec.decode(this.open(p.body, p.flags));
          h.receivedKick({ deviceId: m.deviceId, userId: m.userId });
          break;
        }
        case Command.HTTP_PROXY:
          h.receivedHttpResponse(p.sessionId, HttpResponseCodec.decode(this.open(p.body, p.flags)));
          break;
        case Command.HANDSHAKE:
          this.handshakeOk(p);
          break;
        case Command.FAST_CONNECT:
          this.fastConnectOk(p);
          break;
        default:
          h.receivedPacket(p);
      }
    } catch (err) {
      // Host callbacks never throw here (the protocol rethrows theirs later): this is bad input.
      h.receivedBadInput(err, true, p.cmd);
    }
  }

  /** mpush-wire §5 steps 2 and 4: the body under the server's RSA key, the reply under AES(clientKey, iv). */
  handshake(sessionId: number, deviceId: string, profile: DeviceProfile): Buffer {
    const publicKey = this.settings.publicKey;
    if (publicKey === undefined) throw new TypeError('a full handshake needs the server public key');
    const keys = this.settings.handshakeKeys?.();
    const clientKey = keys?.clientKey ?? randomKey();
    const iv = keys?.iv ?? randomKey();
    const plain = HandshakeCodec.encode({
      deviceId,
      osName: profile.osName,
      osVersion: profile.osVersion,
      clientVersion: profile.clientVersion,
      iv,
      clientKey,
      minHeartbeat: profile.minHeartbeat,
      maxHeartbeat: profile.maxHeartbeat,
      // The Java SDK never sets it; byte-for-byte the same handshake as MPush's own clients.
      timestamp: 0,
    });
    const body = rsaEncrypt(publicKey, plain);
    this.cipher = new AesCipher(clientKey, iv);
    this.clientKey = clientKey;
    this.iv = iv;
    return encodePacket({ cmd: Command.HANDSHAKE, flags: Flags.CRYPTO, sessionId, body });
  }

  /** mpush-wire §6: FAST_CONNECT goes out raw, the connection has no cipher yet. */
  fastConnect(sessionId: number, deviceId: string, profile: DeviceProfile, session: ResumeSession): Buffer {
    const body = FastConnectCodec.encode({
      sessionId: session.sessionId,
      deviceId,
      minHeartbeat: profile.minHeartbeat,
      maxHeartbeat: profile.maxHeartbeat,
    });
    return encodePacket({ cmd: Command.FAST_CONNECT, flags: 0, sessionId, body });
  }

  bind(cmd: number, sessionId: number, userId: string, tags: string, data: string): Buffer {
    return this.seal(cmd, sessionId, BindUserCodec.encode({ userId, data, tags }), 0);
  }

  /** ACK is sent raw, with the push's sessionId (mpush-wire §5, §9). */
  ack(sessionId: number): Buffer {
    return encodePacket({ cmd: Command.ACK, flags: 0, sessionId, body: EMPTY });
  }

  push(sessionId: number, content: Buffer, flags: number): Buffer {
    return this.seal(Command.PUSH, sessionId, content, flags);
  }

  /** Sealed like every request: compressed past the threshold, encrypted (mpush-wire §11). */
  httpRequest(sessionId: number, r: WireHttpRequest<Buffer>): Buffer {
    return this.seal(Command.HTTP_PROXY, sessionId, HttpRequestCodec.encode(r), 0);
  }

  openContent(content: Buffer, flags: number): Buffer {
    return this.open(content, flags);
  }

  /** The Java SDK's body pipeline: compress past the threshold, then encrypt with the current cipher. */
  seal(cmd: number, sessionId: number, plain: Buffer, flags: number): Buffer {
    let body = plain;
    if (body.length > this.settings.compressThreshold) {
      body = deflate(body);
      flags |= Flags.COMPRESS;
    }
    const cipher = this.cipher;
    if (cipher !== undefined) {
      body = cipher.encrypt(body);
      flags |= Flags.CRYPTO;
    }
    return encodePacket({ cmd, flags, sessionId, body });
  }

  /** Decrypts (CRYPTO) then inflates (COMPRESS, bounded): mpush-wire §5. */
  open(body: Buffer, flags: number): Buffer {
    if ((flags & Flags.CRYPTO) !== 0) {
      if (this.cipher === undefined) throw new Error('encrypted packet before any key was agreed');
      body = this.cipher.decrypt(body);
    }
    if ((flags & Flags.COMPRESS) !== 0) body = inflate(body, this.settings.maxInflateBytes);
    return body;
  }

  reset(): void {
    this.decoder = undefined;
    this.cipher = undefined;
    this.clientKey = undefined;
    this.iv = undefined;
  }

  release(): void {
    this.cipher?.release?.();
  }

  private handshakeOk(p: Packet): void {
    const h = this.handler!;
    const clientKey = this.clientKey;
    const iv = this.iv;
    if (h.ready || clientKey === undefined || iv === undefined) throw new Error('unexpected HANDSHAKE reply');
    const m = HandshakeOkCodec.decode(this.open(p.body, p.flags));
    const sessionKey = mixKey(clientKey, m.serverKey);
    this.cipher = new AesCipher(sessionKey, iv);
    this.clientKey = undefined;
    this.iv = undefined;
    h.receivedHandshake({
      sessionId: m.sessionId,
      heartbeat: m.heartbeat,
      expireTime: m.expireTime,
      fast: false,
      sessionKey: sessionKey.toString('hex'),
      iv: iv.toString('hex'),
    });
  }

  private fastConnectOk(p: Packet): void {
    const h = this.handler!;
    const s = h.resuming;
    if (h.ready || s === undefined) throw new Error('unexpected FAST_CONNECT reply');
    const m = FastConnectOkCodec.decode(this.open(p.body, p.flags));
    // mpush-wire §6: every later packet is under the stored session key.
    this.cipher = new AesCipher(Buffer.from(s.sessionKey, 'hex'), Buffer.from(s.iv, 'hex'));
    h.receivedFastConnect(m.heartbeat);
  }
}
