import type { Socket } from 'node:net';
import type { Connection } from './connection.js';
import type { Transport } from './transport.js';

const kConn = Symbol('mpush.connection');
type TaggedSocket = Socket & { [kConn]?: Connection };

// Module-level listeners find their connection through a symbol: no closures per connection.
function onData(this: TaggedSocket, chunk: Buffer): void {
  this[kConn]?.receive(chunk);
}
function onDrain(this: TaggedSocket): void {
  this[kConn]?.drained();
}
function onError(this: TaggedSocket): void {
  // 'close' follows with hadError; the reason is recorded there.
}
function onClose(this: TaggedSocket, hadError: boolean): void {
  const conn = this[kConn];
  this[kConn] = undefined;
  conn?.transportClosed(hadError);
}
function onEnd(this: TaggedSocket): void {
  // The peer half-closed on a socket that allows half-open: MPush devices never do this on
  // purpose; finish the close.
  this.end();
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}

/** A TCP (or TLS) socket as a {@link Transport}. */
export class TcpTransport implements Transport {
  readonly kind: 'tcp' | 'tls';
  private readonly socket: TaggedSocket;

  constructor(socket: Socket, kind: 'tcp' | 'tls' = 'tcp') {
    this.socket = socket;
    this.kind = kind;
  }

  /** Wires the socket's events to `conn`. Call once, right after constructing the connection. */
  attach(conn: Connection): void {
    const s = this.socket;
    s[kConn] = conn; // Nagle is off from the server's noDelay option; writes are batched per tick
    s.on('data', onData);
    s.on('drain', onDrain);
    s.on('error', onError);
    // Without allowHalfOpen (the listeners' default) Node ends the socket itself when the peer
    // half-closes: a second 'end' listener would cost a listener array (64 bytes) per connection.
    if (s.allowHalfOpen) s.on('end', onEnd);
    s.on('close', onClose);
  }

  get remoteAddress(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? 0}`;
  }

  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  get writable(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  write(data: Buffer | string): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(data);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  close(): void {
    if (this.socket.destroyed) return;
    this.socket.end();
    // A peer that never reads, or never closes its side, could hold the socket open: give the
    // queued bytes (an ERROR, a KICK) a moment to flush, then let go.
    setTimeout(destroySocket, 5000, this.socket).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
