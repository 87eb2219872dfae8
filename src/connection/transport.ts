/**
 * What a connection writes through. There is no read method: the transport pushes what it
 * reads into its connection (the connection owns the read loop), so a handler only ever sees a
 * Connection, never a socket.
 */
export interface Transport {
  readonly kind: 'tcp' | 'tls' | 'ws';
  /** `ip:port` of the peer, for logs. */
  readonly remoteAddress: string;
  /** False once the transport can no longer carry bytes (destroyed, closing). */
  readonly writable: boolean;
  /** Bytes accepted by {@link write} and not yet handed to the kernel. */
  readonly bufferedBytes: number;
  /** Queues bytes (binary) or a text frame (WebSocket JSON). False when the peer is not keeping up. */
  write(data: Buffer | string): boolean;
  /** Batches the writes of this tick into one syscall; the transport uncorks on the next tick. */
  cork(): void;
  uncork(): void;
  /** Liveness probe, where the transport has one (WebSocket ping). */
  ping?(): void;
  /** Flushes what is queued and closes. */
  close(code?: number, reason?: string): void;
  /** Closes now, dropping what is queued. */
  destroy(): void;
}
