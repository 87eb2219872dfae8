import { connect, type Socket } from 'node:net';
import { signGatewayAuth } from '../../crypto/gateway-mac.js';
import {
  Command,
  ErrorCodec,
  ExtCommand,
  encodePacket,
  FrameDecoder,
  type FrameHandler,
  GatewayAuthCodec,
  type Packet,
} from '../../protocol/index.js';
import type { OutboundLimit, OutboundOwner, OutboundWriter } from '../../util/outbound-writer.js';
import { streamWriter } from '../../util/stream-sink.js';

/** Receives the reply to one gateway request, or learns the channel died first. */
export interface ReplyHandler {
  onReply(packet: Packet): void;
  onChannelClosed(reason: string): void;
}

export interface GatewayChannelOptions {
  secret?: string;
  clientId?: string;
  connectTimeoutMs?: number;
  /** Largest reply body accepted. */
  maxPacketSize?: number;
  /**
   * Request bytes queued to a gateway that is not reading them before the channel is dropped
   * (its pending requests fail). Default 16 MiB.
   */
  maxOutboundBytes?: number;
  /**
   * How long a backpressured gateway connection may take to drain before the channel is dropped
   * (its pending requests fail), ms. Default 10 s.
   */
  drainTimeoutMs?: number;
}

/**
 * One TCP connection from a push client to a gateway, multiplexing requests by sessionId (the
 * request bus). Connects lazily, authenticates when a secret is set, and fails every pending
 * request when the connection drops, so each request learns its fate exactly once. Requests are
 * written through an outbound writer: a gateway that stops reading them (past `maxOutboundBytes`
 * queued, or not drained within `drainTimeoutMs`) drops the connection like a lost one.
 */
export class GatewayChannel implements FrameHandler, OutboundOwner {
  private socket: Socket | null = null;
  private writer: OutboundWriter | null = null;
  private connecting: Promise<void> | null = null;
  private readonly pending = new Map<number, ReplyHandler>();
  private seq = 0;
  private decoder: FrameDecoder | null = null;
  private closedByUser = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly opts: GatewayChannelOptions = {},
  ) {}

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get connected(): boolean {
    return this.socket !== null && this.connecting === null;
  }

  /** Resolves once the channel can carry requests (connected and authenticated). */
  connect(): Promise<void> {
    if (this.connected) return Promise.resolve();
    if (this.connecting) return this.connecting;
    this.closedByUser = false;
    this.connecting = this.open().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private open(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const socket = connect({ host: this.host, port: this.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to gateway ${this.address} timed out`));
      }, this.opts.connectTimeoutMs ?? 3000);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`gateway ${this.address}: ${err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        this.socket = socket;
        this.writer = streamWriter(socket, this, {
          maxBytes: this.opts.maxOutboundBytes ?? 16 * 1024 * 1024,
          drainTimeoutMs: this.opts.drainTimeoutMs ?? 10_000,
        });
        this.decoder = new FrameDecoder(this, { maxBodyLength: this.opts.maxPacketSize ?? 16 * 1024 * 1024 });
        socket.removeAllListeners('error');
        socket.on('error', () => {});
        socket.on('data', (chunk: Buffer) => {
          try {
            this.decoder?.push(chunk);
          } catch {
            socket.destroy();
          }
        });
        socket.on('close', () => this.dropped(socket));
        if (!this.opts.secret) return resolve();
        this.authenticate(this.opts.secret).then(resolve, (err: Error) => {
          socket.destroy();
          reject(err);
        });
      });
    });
  }

  private authenticate(secret: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const body = GatewayAuthCodec.encode(signGatewayAuth(secret, this.opts.clientId ?? 'push-sender'));
      this.send(ExtCommand.GATEWAY_AUTH, 0, body, {
        onReply: (p) => {
          if (p.cmd === Command.OK) resolve();
          else reject(new Error(`gateway ${this.address} refused auth: ${ErrorCodec.decode(p.body).reason}`));
        },
        onChannelClosed: (reason) => reject(new Error(reason)),
      });
    });
  }

  /**
   * Sends one request; the reply (matched by sessionId) goes to `handler`.
   * @returns the sessionId, or -1 when the channel is not connected (nothing was sent).
   */
  send(cmd: number, flags: number, body: Buffer, handler: ReplyHandler): number {
    const socket = this.socket;
    const writer = this.writer;
    if (!socket || socket.destroyed || !writer) return -1;
    this.seq = (this.seq + 1) & 0x7fffffff || 1;
    const sessionId = this.seq;
    this.pending.set(sessionId, handler);
    // Past a limit the channel is dropped: this request is pending with the others and fails
    // with them.
    writer.write(encodePacket({ cmd, flags, sessionId, body }));
    return sessionId;
  }

  /** @internal OutboundOwner: the gateway stopped reading what this channel writes. */
  onOutboundLimit(limit: OutboundLimit): void {
    const socket = this.socket;
    if (!socket) return;
    const reason =
      limit === 'outbound-limit'
        ? `gateway ${this.address} not reading: more than maxOutboundBytes queued`
        : `gateway ${this.address} not reading: not drained within drainTimeoutMs`;
    this.detach();
    socket.destroy();
    // Unusable at once (the next request connects afresh); the pending requests fail as on a lost
    // connection, on the next tick rather than inside the send() whose write passed the limit.
    process.nextTick(() => this.failPending(reason));
  }

  /** Forgets a request (it timed out): a late reply is then dropped here. */
  forget(sessionId: number): void {
    this.pending.delete(sessionId);
  }

  /** @internal FrameHandler */
  onPacket(p: Packet): void {
    const handler = this.pending.get(p.sessionId);
    if (!handler) return; // late reply to a request that already timed out
    this.pending.delete(p.sessionId);
    try {
      handler.onReply(p);
    } catch (err) {
      // A reply its handler cannot read (a truncated ERROR body, say) ends that request alone, as a
      // failure: the handler was already taken off `pending`, so nothing else would ever settle it.
      handler.onChannelClosed(`malformed reply from gateway ${this.address}: ${(err as Error).message}`);
    }
  }

  /** @internal FrameHandler */
  onHeartbeat(): void {}

  private dropped(socket: Socket): void {
    if (this.socket !== socket) return;
    this.detach();
    this.failPending(this.closedByUser ? 'push sender stopped' : `gateway ${this.address} connection lost`);
  }

  private detach(): void {
    this.socket = null;
    this.decoder = null;
    this.writer?.stop();
    this.writer = null;
  }

  private failPending(reason: string): void {
    const handlers = [...this.pending.values()];
    this.pending.clear();
    for (const h of handlers) h.onChannelClosed(reason);
  }

  close(): void {
    this.closedByUser = true;
    this.socket?.destroy();
  }
}
