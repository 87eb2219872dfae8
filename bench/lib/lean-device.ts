// The device side of the MPush protocol as the benchmark fleet drives it, with no socket: bytes from
// the server go in (`receive`), bytes for the server come out through the host's `write`, and what
// happened is reported to the host with the device's owner (the fleet's record), so one host object
// serves every device and no closure is made per device.
//
// This file is the seam between the fleet and the protocol: the fleet (fleet.ts) uses nothing else
// of it, so it can be replaced by the socket-free device protocol object of src/client/device/ by
// rewriting this file alone. mpush-wire §5 (handshake), §6 (fast connect), §8 (bind), §9 and §12
// (push and ack).

import type { KeyObject } from 'node:crypto';
import { AesCipher, mixKey, randomKey, rsaEncrypt } from '../../src/crypto/index.js';
import {
  BindUserCodec,
  Command,
  ErrorCodec,
  encodePacket,
  FastConnectCodec,
  Flags,
  FrameDecoder,
  type FrameHandler,
  HandshakeCodec,
  HandshakeOkCodec,
  HEARTBEAT_FRAME,
  type Packet,
} from '../../src/protocol/index.js';

/** What the protocol tells its host, for every device it drives (`D`: the host's record). */
export interface DeviceHost<D> {
  /** Bytes for the server, in order. */
  write(owner: D, bytes: Buffer): void;
  /** The session is up (HandshakeOk, or the fast-connect reply: then `session` is null). */
  ready(owner: D, session: LeanSession | null): void;
  bound(owner: D): void;
  /** A PUSH from the server; `ack` and `open` answer and read it. */
  push(owner: D, push: Packet): void;
  /** The server echoed a heartbeat. */
  heartbeat(owner: D): void;
  /** The server refused (ERROR), or sent bytes this device cannot read: the connection is done. */
  fail(owner: D, reason: string): void;
  /** A packet the device did not expect in its state (counted, not fatal). */
  unexpected(owner: D, what: string): void;
}

/** What a fast connect resumes (mpush-wire §6): kept by the host if it wants to resume later. */
export interface LeanSession {
  sessionId: string;
  key: Buffer;
  iv: Buffer;
}

const State = { Idle: 0, Handshaking: 1, FastConnecting: 2, Ready: 3, Binding: 4, Bound: 5 } as const;
const HANDSHAKE_SID = 1;
const BIND_SID = 2;
const EMPTY = Buffer.alloc(0);
/** A push asking AUTO_ACK or BIZ_ACK wants an ACK (mpush-wire §9, §12). */
export const ACK_FLAGS = Flags.AUTO_ACK | Flags.BIZ_ACK;

/** One device's protocol state: what it read so far, its keys, where it is in the session. */
export class LeanDevice<D> implements FrameHandler {
  private decoder: FrameDecoder | null = new FrameDecoder(this);
  private cipher: AesCipher | null = null;
  private clientKey: Buffer | null = null;
  private iv: Buffer | null = null;
  private state: number = State.Idle;

  constructor(
    private readonly host: DeviceHost<D>,
    private readonly owner: D,
  ) {}

  /** Bytes read from the server. */
  receive(chunk: Buffer): void {
    try {
      this.decoder?.push(chunk);
    } catch (err) {
      this.decoder = null;
      this.host.fail(this.owner, `client framing: ${(err as Error).message}`);
    }
  }

  /** The full handshake: the Handshake body RSA-encrypted with the server's key. */
  handshake(serverKey: KeyObject, deviceId: string): void {
    this.clientKey = randomKey();
    this.iv = randomKey();
    const body = HandshakeCodec.encode({
      deviceId,
      osName: 'android',
      osVersion: '10',
      clientVersion: '1.0.0',
      iv: this.iv,
      clientKey: this.clientKey,
      minHeartbeat: 0,
      maxHeartbeat: 180_000,
      timestamp: 0,
    });
    // The HandshakeOk comes back under AES(clientKey, iv), the session then runs under the mix.
    this.cipher = new AesCipher(this.clientKey, this.iv);
    this.state = State.Handshaking;
    this.send(Command.HANDSHAKE, Flags.CRYPTO, HANDSHAKE_SID, rsaEncrypt(serverKey, body));
  }

  /** Resumes a session of an earlier handshake; FAST_CONNECT goes out raw. */
  fastConnect(session: LeanSession, deviceId: string): void {
    this.cipher = new AesCipher(session.key, session.iv);
    this.state = State.FastConnecting;
    const body = FastConnectCodec.encode({
      sessionId: session.sessionId,
      deviceId,
      minHeartbeat: 0,
      maxHeartbeat: 180_000,
    });
    this.send(Command.FAST_CONNECT, 0, HANDSHAKE_SID, body);
  }

  bind(userId: string): void {
    this.state = State.Binding;
    const body = this.cipher!.encrypt(BindUserCodec.encode({ userId, data: '', tags: '' }));
    this.send(Command.BIND, Flags.CRYPTO, BIND_SID, body);
  }

  /** The raw ACK of a push: no flags, the push's sessionId, an empty body. */
  ack(push: Packet): void {
    this.send(Command.ACK, 0, push.sessionId, EMPTY);
  }

  /** A push's plaintext. */
  open(push: Packet): Buffer {
    return push.flags & Flags.CRYPTO ? this.cipher!.decrypt(push.body) : push.body;
  }

  heartbeat(): void {
    this.host.write(this.owner, HEARTBEAT_FRAME);
  }

  onHeartbeat(): void {
    this.host.heartbeat(this.owner);
  }

  onPacket(p: Packet): void {
    try {
      if (p.cmd === Command.PUSH && this.state === State.Bound) return this.host.push(this.owner, p);
      if (p.cmd === Command.HANDSHAKE && this.state === State.Handshaking) return this.handshakeOk(p);
      if (p.cmd === Command.FAST_CONNECT && this.state === State.FastConnecting) {
        this.state = State.Ready;
        return this.host.ready(this.owner, null);
      }
      if (p.cmd === Command.OK && p.sessionId === BIND_SID && this.state === State.Binding) {
        this.state = State.Bound;
        // Held idle from here: the native AES contexts come back with the first push.
        this.cipher!.release();
        return this.host.bound(this.owner);
      }
      if (p.cmd === Command.ERROR) {
        const e = ErrorCodec.decode(p.body);
        return this.host.fail(this.owner, `ERROR cmd ${e.cmd} code ${e.code}: ${e.reason}`);
      }
      this.host.unexpected(this.owner, `cmd ${p.cmd} in state ${this.state}`);
    } catch (err) {
      this.host.fail(this.owner, `client decode: ${(err as Error).message}`);
    }
  }

  private handshakeOk(p: Packet): void {
    const ok = HandshakeOkCodec.decode(this.open(p));
    const key = mixKey(this.clientKey!, ok.serverKey);
    const iv = this.iv!;
    this.clientKey = null;
    this.iv = null;
    this.cipher = new AesCipher(key, iv);
    this.state = State.Ready;
    this.host.ready(this.owner, { sessionId: ok.sessionId, key, iv });
  }

  private send(cmd: number, flags: number, sessionId: number, body: Buffer): void {
    this.host.write(this.owner, encodePacket({ cmd, flags, sessionId, body }));
  }
}
