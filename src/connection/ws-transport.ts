import type { WebSocket } from 'ws';
import type { Connection } from './connection.js';
import type { Transport } from './transport.js';

const kConn = Symbol('mpush.connection');
type TaggedWs = WebSocket & { [kConn]?: Connection };

function onMessage(this: TaggedWs, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
  const conn = this[kConn];
  if (!conn) return;
  const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  if (isBinary) {
    // MPush's binary protocol carried in binary frames: the connection switches on its first message.
    if (conn.protocol !== 'binary' && !conn.handshaked) conn.protocol = 'binary';
    conn.receive(buf);
  } else {
    conn.receiveText(buf.toString('utf8'));
  }
}
function onPong(this: TaggedWs): void {
  this[kConn]?.touch();
}
function onError(this: TaggedWs): void {
  // 'close' follows; errors (bad frames, payload too large) are answered by ws with a close code.
}
function onClose(this: TaggedWs, code: number): void {
  const conn = this[kConn];
  this[kConn] = undefined;
  conn?.transportClosed(code === 1006);
}

function terminate(ws: WebSocket): void {
  if (ws.readyState !== 3) ws.terminate();
}

/** A WebSocket (the `ws` package) as a {@link Transport}. */
export class WsTransport implements Transport {
  readonly kind = 'ws' as const;
  private readonly ws: TaggedWs;
  private readonly address: string;

  constructor(ws: WebSocket, remoteAddress: string) {
    this.ws = ws;
    this.address = remoteAddress;
  }

  attach(conn: Connection): void {
    const ws = this.ws;
    ws[kConn] = conn;
    ws.on('message', onMessage);
    ws.on('pong', onPong);
    ws.on('error', onError);
    ws.on('close', onClose);
  }

  get remoteAddress(): string {
    return this.address;
  }

  get bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  get writable(): boolean {
    return this.ws.readyState === 1;
  }

  write(data: Buffer | string): boolean {
    if (this.ws.readyState !== 1) return false;
    this.ws.send(data);
    // ws has no drain event: its queue is bounded by the outbound-bytes check alone, and a peer
    // that stops answering pings is closed by the heartbeat check.
    return true;
  }

  cork(): void {}

  uncork(): void {}

  ping(): void {
    if (this.ws.readyState === 1) this.ws.ping();
  }

  close(code = 1000, reason = ''): void {
    if (this.ws.readyState !== 0 && this.ws.readyState !== 1) return;
    this.ws.close(code, reason);
    // ws would wait 30 s for the peer's close frame; a peer that stopped reading never sends it.
    setTimeout(terminate, 2000, this.ws).unref();
  }

  destroy(): void {
    this.ws.terminate();
  }
}
