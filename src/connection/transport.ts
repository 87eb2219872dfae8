import type { OutboundSink } from '../util/outbound-writer.js';

/**
 * What a connection writes through: an {@link OutboundSink} (binary, or WebSocket JSON text
 * frames) that the connection's outbound writer writes to. There is no read method: the
 * transport pushes what it reads into its connection (the connection owns the read loop), so a
 * handler only ever sees a Connection, never a socket.
 */
export interface Transport extends OutboundSink {
  readonly kind: 'tcp' | 'tls' | 'ws';
  /** `ip:port` of the peer, for logs. */
  readonly remoteAddress: string;
  /** Liveness probe, where the transport has one (WebSocket ping). */
  ping?(): void;
  /** Flushes what is queued and closes. */
  close(code?: number, reason?: string): void;
  /** Closes now, dropping what is queued. */
  destroy(): void;
}
