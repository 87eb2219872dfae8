import type { Connection, Transport } from '../../src/connection/index.js';
import type { Cipher } from '../../src/crypto/index.js';
import { inflate } from '../../src/crypto/index.js';
import {
  decodeJsonPacket,
  Flags,
  FrameDecoder,
  type JsonPacket,
  type Packet,
} from '../../src/protocol/index.js';

/**
 * A {@link Transport} with no socket (centrifuge's testTransport, aedes' in-memory duplex): a
 * test feeds it the peer's bytes and reads back what the connection wrote, decoded. Binary
 * writes go through the protocol's own FrameDecoder (bodies as sent: open them with the
 * device's cipher, {@link openBody}); text writes are parsed as WebSocket JSON packets.
 */
export class MemoryTransport implements Transport {
  readonly kind: 'tcp' | 'tls' | 'ws';
  readonly remoteAddress = 'memory:0';
  /** Every write, in order, copied as written. */
  readonly writes: Array<Buffer | string> = [];
  /** Binary packets written and not yet taken. */
  readonly packets: Packet[] = [];
  /** WebSocket JSON packets written and not yet taken. */
  readonly texts: JsonPacket[] = [];
  /** Heartbeat bytes (0xDF) written. */
  heartbeats = 0;
  /** What {@link write} answers: false plays a peer that is not keeping up. */
  acceptWrites = true;
  /** What the connection reads as queued and unsent. */
  bufferedBytes = 0;
  /** How the connection closed this transport, once it did. */
  closedBy: { code: number | undefined; reason: string | undefined; destroyed: boolean } | null = null;
  private gone = false;
  private conn: Connection | undefined;
  private readonly decoder = new FrameDecoder(
    {
      onPacket: (p) => this.packets.push(p),
      onHeartbeat: () => this.heartbeats++,
    },
    { maxBodyLength: 64 * 1024 * 1024 },
  );

  constructor(kind: 'tcp' | 'tls' | 'ws' = 'tcp') {
    this.kind = kind;
  }

  /** Wires the transport to its connection (as TcpTransport.attach does with the socket's events). */
  attach(conn: Connection): void {
    this.conn = conn;
  }

  private connection(): Connection {
    if (!this.conn) throw new Error('MemoryTransport: attach() a connection first');
    return this.conn;
  }

  /** Bytes from the peer, as a socket delivers them (any chunking). */
  feed(bytes: Buffer): void {
    this.connection().receive(bytes);
  }

  /** A WebSocket text frame from the peer. */
  feedText(text: string): void {
    this.connection().receiveText(text);
  }

  /** The peer vanished and its close is not processed yet: every later write fails. */
  vanish(): void {
    this.gone = true;
  }

  /** The peer closed (or the transport failed): what the socket's 'close' event reports. */
  peerClosed(error = false): void {
    this.gone = true;
    this.connection().transportClosed(error);
  }

  get writable(): boolean {
    return !this.gone && this.closedBy === null;
  }

  write(data: Buffer | string): boolean {
    if (!this.writable) return false;
    if (typeof data === 'string') {
      this.writes.push(data);
      this.texts.push(decodeJsonPacket(data));
    } else {
      // Copied: a writer may reuse its buffer once write() returns.
      const copy = Buffer.from(data);
      this.writes.push(copy);
      this.decoder.push(copy);
    }
    return this.acceptWrites;
  }

  cork(): void {}

  uncork(): void {}

  close(code?: number, reason?: string): void {
    this.closedBy ??= { code, reason, destroyed: false };
  }

  destroy(): void {
    this.closedBy ??= { code: undefined, reason: undefined, destroyed: true };
  }

  /** Removes and returns the first binary packet written with `cmd`; throws when there is none. */
  take(cmd: number): Packet {
    const i = this.packets.findIndex((p) => p.cmd === cmd);
    if (i < 0) throw new Error(`no packet with cmd ${cmd} written (have ${this.packets.map((p) => p.cmd)})`);
    return this.packets.splice(i, 1)[0]!;
  }

  /** Removes and returns the first JSON packet written with `cmd`; throws when there is none. */
  takeText(cmd: number): JsonPacket {
    const i = this.texts.findIndex((p) => p.cmd === cmd);
    if (i < 0)
      throw new Error(`no JSON packet with cmd ${cmd} written (have ${this.texts.map((p) => p.cmd)})`);
    return this.texts.splice(i, 1)[0]!;
  }
}

/**
 * The plain body of a packet the server wrote, opened as the device would: decrypted with the
 * device's cipher when CRYPTO is set, then inflated when COMPRESS is set.
 */
export function openBody(p: Packet, cipher: Cipher | null): Buffer {
  let body = p.body;
  if (p.flags & Flags.CRYPTO) {
    if (!cipher) throw new Error('encrypted packet and no cipher to open it');
    body = cipher.decrypt(body);
  }
  if (p.flags & Flags.COMPRESS) body = inflate(body, 64 * 1024 * 1024);
  return body;
}
