import type { KeyObject } from 'node:crypto';
import { MemorySessionStore } from '../../src/cluster/session-store.js';
import { type Config, type DeepPartial, loadConfig } from '../../src/config/index.js';
import type { Connection, WireProtocol } from '../../src/connection/index.js';
import {
  AesCipher,
  type Cipher,
  generateRsaKeyPair,
  mixKey,
  RsaClientCipher,
  randomKey,
} from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import {
  BindUserCodec,
  Command,
  ErrorCodec,
  type ErrorMessage,
  encodePacket,
  Flags,
  HandshakeCodec,
  HandshakeOkCodec,
  type HandshakeOkMessage,
  OkCodec,
  type OkMessage,
  type Packet,
} from '../../src/protocol/index.js';
import { ConnectionServer } from '../../src/server/connection-server.js';
import { MemoryTransport, openBody } from './memory-transport.js';

const keys = generateRsaKeyPair(1024);

/** A connection server with no listening socket: devices reach it over {@link MemoryTransport}s. */
export interface MemoryServer {
  server: ConnectionServer;
  config: Config;
  sessions: MemorySessionStore;
  /** The server's public key, as devices are configured with it. */
  publicKey: KeyObject;
  /** The fake clock of the timer wheel and the handshake token bucket: it moves only when a test moves it. */
  clock: { now: number };
  /** A new device connection over a memory transport. */
  connect(protocol?: WireProtocol): MemoryDevice;
  close(): Promise<void>;
}

/** A {@link ConnectionServer} over memory transports, on a fake clock. */
export function memoryServer(overrides: DeepPartial<Config> = {}): MemoryServer {
  const config = loadConfig({ overrides });
  const clock = { now: 1_000_000 };
  const sessions = new MemorySessionStore();
  const server = new ConnectionServer({
    config,
    privateKey: keys.privateKey,
    sessions,
    log: silentLogger,
    clock: () => clock.now,
  });
  return {
    server,
    config,
    sessions,
    publicKey: keys.publicKey,
    clock,
    connect(protocol: WireProtocol = 'binary') {
      const transport = new MemoryTransport(protocol === 'json' ? 'ws' : 'tcp');
      const conn = server.accept(transport, protocol);
      if (!conn) throw new Error('connection refused');
      transport.attach(conn);
      return new MemoryDevice(conn, transport);
    },
    async close() {
      await server.close();
      await sessions.close();
    },
  };
}

/**
 * The device end of a memory connection, framing and encrypting like MPush's Java SDK. Every
 * server reply to a packet is written before {@link send} returns, except where a handler waits
 * on a store (fast connect).
 */
export class MemoryDevice {
  cipher: Cipher | null = null;
  readonly clientKey = randomKey();
  readonly iv = randomKey();
  private seq = 0;

  constructor(
    readonly conn: Connection,
    readonly transport: MemoryTransport,
  ) {}

  /** Sends a packet, its body encrypted with the device's cipher unless `encrypt` is false. */
  send(
    cmd: number,
    body: Buffer,
    opts: { encrypt?: boolean; flags?: number; sessionId?: number } = {},
  ): number {
    this.transport.feed(this.frame(cmd, body, opts));
    return opts.sessionId ?? this.seq;
  }

  /** One encoded packet, without sending it (to feed several in one chunk). */
  frame(
    cmd: number,
    body: Buffer,
    opts: { encrypt?: boolean; flags?: number; sessionId?: number } = {},
  ): Buffer {
    const sessionId = opts.sessionId ?? ++this.seq;
    let flags = opts.flags ?? 0;
    let b = body;
    if ((opts.encrypt ?? true) && this.cipher) {
      b = this.cipher.encrypt(body);
      flags |= Flags.CRYPTO;
    }
    return encodePacket({ cmd, flags, sessionId, body: b });
  }

  /** Sends a WebSocket JSON packet. */
  sendJson(
    cmd: number,
    body: Record<string, unknown>,
    sessionId = ++this.seq,
    flags = Flags.JSON_BODY,
  ): number {
    this.transport.feedText(JSON.stringify({ cmd, flags, sessionId, body }));
    return sessionId;
  }

  /** The full RSA handshake of the Java SDK (mpush-wire §5); the device ends on the session cipher. */
  handshake(
    publicKey: KeyObject,
    fields: { deviceId?: string; osName?: string; maxHeartbeat?: number } = {},
  ): HandshakeOkMessage {
    this.cipher = new RsaClientCipher(publicKey);
    this.send(
      Command.HANDSHAKE,
      HandshakeCodec.encode({
        deviceId: fields.deviceId ?? `dev-${this.conn.id}`,
        osName: fields.osName ?? 'android',
        osVersion: '10',
        clientVersion: '1.0.0',
        iv: this.iv,
        clientKey: this.clientKey,
        minHeartbeat: 0,
        maxHeartbeat: fields.maxHeartbeat ?? 240_000,
        timestamp: 0,
      }),
    );
    this.cipher = new AesCipher(this.clientKey, this.iv);
    const ok = HandshakeOkCodec.decode(this.open(this.transport.take(Command.HANDSHAKE)));
    this.cipher = new AesCipher(mixKey(this.clientKey, ok.serverKey), this.iv);
    return ok;
  }

  /** Sends BIND and returns its reply (written synchronously). */
  bind(userId: string, data = '', tags = ''): { ok?: OkMessage; error?: ErrorMessage } {
    const sid = this.send(Command.BIND, BindUserCodec.encode({ userId, data, tags }));
    return this.reply(sid);
  }

  /** Sends UNBIND and returns its reply. */
  unbind(userId: string): { ok?: OkMessage; error?: ErrorMessage } {
    const sid = this.send(Command.UNBIND, BindUserCodec.encode({ userId, data: '', tags: '' }));
    return this.reply(sid);
  }

  /** Takes the OK or ERROR answering `sessionId`. */
  reply(sessionId: number): { ok?: OkMessage; error?: ErrorMessage } {
    const packets = this.transport.packets;
    const i = packets.findIndex(
      (p) => (p.cmd === Command.OK || p.cmd === Command.ERROR) && p.sessionId === sessionId,
    );
    if (i < 0) throw new Error(`no reply to sessionId ${sessionId}`);
    const p = packets.splice(i, 1)[0]!;
    return p.cmd === Command.OK ? { ok: OkCodec.decode(p.body) } : { error: ErrorCodec.decode(p.body) };
  }

  /** The plain body of a packet the server wrote, opened with the device's current cipher. */
  open(p: Packet): Buffer {
    return openBody(p, this.cipher);
  }
}
