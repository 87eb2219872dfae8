import type { Server, Socket } from 'node:net';
import {
  createServer as createTlsServer,
  type TLSSocket,
  type TlsOptions,
  type Server as TlsServer,
} from 'node:tls';

/**
 * Starts `server` listening (a net, tls, http or https server alike); resolves with the bound port
 * (0 picks one), rejects when the port cannot be had. Errors after that are the caller's `onError`.
 */
export function listenOn(
  server: Server,
  port: number,
  host: string,
  backlog: number,
  onError: (err: Error) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog }, () => {
      server.off('error', reject);
      server.on('error', onError);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}

/** Closes `server` (undefined: nothing to close); resolves once its listener is gone. */
export function closeServer(server: Server | undefined): Promise<void> {
  return server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
}

/**
 * A TLS server (no Nagle) whose failed or timed-out handshakes close their socket, then tell
 * `onFailure`: Node leaves that socket open once anyone listens for `tlsClientError`.
 */
export function tlsListener(
  options: TlsOptions,
  onConnection: (socket: TLSSocket) => void,
  onFailure: (err: Error) => void,
): TlsServer {
  const server = createTlsServer({ ...options, noDelay: true }, onConnection);
  server.on('tlsClientError', (err: Error, socket: Socket) => {
    socket.destroy();
    onFailure(err);
  });
  return server;
}
