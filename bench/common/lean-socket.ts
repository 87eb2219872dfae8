// The socket side of the lean benchmark devices (bench/connections, bench/push, bench/cluster):
// one small object per connection, found from its socket through a symbol by module-level
// listeners, so thousands of connections per process create no closures.

import { connect, type Socket } from 'node:net';
import type { FrameDecoder } from '../../src/protocol/index.js';

/** What a lean device exposes to its socket's listeners. */
export interface LeanPeer {
  socket: Socket | null;
  /** Null for a device that reads nothing (the bare reference client). */
  decoder: FrameDecoder | null;
  lastError: string;
  connected(): void;
  fail(reason: string): void;
}

const kPeer = Symbol('bench.peer');
type TaggedSocket = Socket & { [kPeer]?: LeanPeer };

function onConnect(this: TaggedSocket): void {
  this[kPeer]?.connected();
}
function onData(this: TaggedSocket, chunk: Buffer): void {
  const peer = this[kPeer];
  if (!peer?.decoder) return;
  try {
    peer.decoder.push(chunk);
  } catch (err) {
    peer.fail(`client framing: ${(err as Error).message}`);
  }
}
function onError(this: TaggedSocket, err: NodeJS.ErrnoException): void {
  const peer = this[kPeer];
  if (peer) peer.lastError = err.code ?? err.message;
}
function onClose(this: TaggedSocket): void {
  const peer = this[kPeer];
  this[kPeer] = undefined;
  if (!peer || peer.socket !== this) return;
  peer.fail(peer.lastError ? `socket ${peer.lastError}` : 'closed by server');
}

/** Opens a connection for `peer` (set as `peer.socket` before any event can fire). */
export function openLeanSocket(
  peer: LeanPeer,
  to: { host: string; port: number; localAddress?: string | undefined },
): Socket {
  const s: TaggedSocket = connect({
    host: to.host,
    port: to.port,
    localAddress: to.localAddress,
    noDelay: true,
  });
  s[kPeer] = peer;
  peer.socket = s;
  s.on('connect', onConnect);
  s.on('data', onData);
  s.on('error', onError);
  s.on('close', onClose);
  return s;
}
