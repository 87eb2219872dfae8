import type { Socket } from 'node:net';
import type { Connection } from './connection.js';
import type { Transport } from './transport.js';

const kConn = Symbol('mpush.connection');
type TaggedSocket = Socket & { [kConn]?: Connection };

// Module-level listeners find their connection through a symbol: no closures per connection.
function onData(this: TaggedSocket, chunk: Buffer): void {
  this[kConn]?.receive(chunk);
}
/** A read into the lent buffer: called by Node as a method of the socket. */
function onLentRead(this: TaggedSocket, nread: number, buf: Buffer): void {
  this[kConn]?.receive(buf.subarray(0, nread));
}

/**
 * One read buffer for every plain TCP device socket of the process. By default Node reads each
 * chunk into a fresh 64 KiB allocation, shrinks it, wraps it in an ArrayBuffer and a Buffer and
 * passes it through the stream machinery ('data'); at one read per acked push that is a malloc, a
 * realloc, a free and an ArrayBuffer to sweep per push. Reads are synchronous and each is
 * consumed before the next one (the decoder copies what it keeps), so one buffer serves all.
 */
const lent = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * Node's `onread` option (a caller-supplied read buffer and callback, public for client sockets)
 * for a socket a server accepted: Node's net module keeps the option under private symbols, set
 * here before the first read. False, and nothing changed, where this Node does not have them: the
 * socket then reads through 'data' events.
 */
function lendReadBuffer(socket: Socket): boolean {
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (b: Uint8Array) => void } })._handle;
  if (typeof handle?.useUserBuffer !== 'function') return false;
  const slots = socket as unknown as Record<symbol, unknown>;
  if (onreadSlots === undefined) onreadSlots = findOnreadSlots(socket);
  const keys = onreadSlots;
  // Both present and unset (null): a socket made without `onread`, as every accepted one is.
  if (keys === null || slots[keys.buffer] !== null || slots[keys.callback] !== null) return false;
  slots[keys.buffer] = lent;
  slots[keys.callback] = onLentRead;
  handle.useUserBuffer(lent);
  return true;
}

/** The net module's private `onread` slots, found once (on the first socket accepted); null: none. */
let onreadSlots: { buffer: symbol; callback: symbol } | null | undefined;

function findOnreadSlots(socket: Socket): { buffer: symbol; callback: symbol } | null {
  let buffer: symbol | undefined;
  let callback: symbol | undefined;
  for (const sym of Object.getOwnPropertySymbols(socket)) {
    if (sym.description === 'kBuffer') buffer = sym;
    else if (sym.description === 'kBufferCb') callback = sym;
  }
  return buffer && callback ? { buffer, callback } : null;
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
  /** Reads land in the process's one lent buffer instead of 'data' events (plain TCP, see lendReadBuffer). */
  lendsReads = false;

  /**
   * @param lend read plain TCP into the process's one read buffer where this Node allows it (a
   *   test turns it off to run the 'data' path).
   */
  constructor(
    socket: Socket,
    kind: 'tcp' | 'tls' = 'tcp',
    private readonly lend = true,
  ) {
    this.socket = socket;
    this.kind = kind;
  }

  /**
   * Wires the socket's events to `conn`. Call once, right after constructing the connection, in
   * the tick the socket was accepted (before its first read).
   */
  attach(conn: Connection): void {
    const s = this.socket;
    s[kConn] = conn; // Nagle is off from the server's noDelay option; writes are batched per tick
    // A TLS socket's reads are the TLS layer's: only plain TCP lends.
    this.lendsReads = this.lend && this.kind === 'tcp' && lendReadBuffer(s);
    if (!this.lendsReads) s.on('data', onData);
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
