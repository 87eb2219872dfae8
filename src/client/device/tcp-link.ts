// One TCP (or TLS) connection of a DeviceClient: its socket and the socket's listeners (the connection's
// timers belong to the session, device-session.ts). Listeners are module functions
// shared by every connection, finding their Link through a symbol (as connection/tcp-transport.ts):
// no closures per connection.

import { Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { type ClientTlsOptions, tlsConnectOptions } from '../tls.js';
import type { ServerAddress } from './tcp-client-options.js';

/** {@link LinkOwner} method: the socket connected (over TLS: its handshake is done). */
export const kOnConnect = Symbol('mpush.device.onConnect');
/** {@link LinkOwner} method: bytes arrived. */
export const kOnData = Symbol('mpush.device.onData');
/** {@link LinkOwner} method: the socket failed. */
export const kOnError = Symbol('mpush.device.onError');
/** {@link LinkOwner} method: the socket closed. */
export const kOnClose = Symbol('mpush.device.onClose');

/** What a {@link Link} reports to the client that opened it. */
export interface LinkOwner {
  [kOnConnect](link: Link): void;
  [kOnData](link: Link, chunk: Buffer): void;
  [kOnError](link: Link, err: Error): void;
  [kOnClose](link: Link): void;
}

const kLink = Symbol('mpush.device.link');
type LinkedSocket = Socket & { [kLink]?: Link };

/**
 * One TCP connection and what belongs to it alone. Each socket gets one: a callback of an old
 * socket finds its old Link, which is no longer the client's current one, and is ignored
 * (the `connectionEpoch` guard of ioredis).
 */
export class Link {
  /** Where the socket connects; undefined while the address is being looked up (allocator). */
  address: ServerAddress | undefined;
  /** The connection's socket; over TLS, the TLS socket takes the pending one's place at dial. */
  socket: Socket;

  constructor(
    readonly owner: LinkOwner,
    socket: Socket,
    /** Connect with TLS (the server's tls.port), with these options. */
    readonly tls: ClientTlsOptions | undefined,
  ) {
    this.socket = socket;
  }

  /** `host:port`, or `what` while there is no address yet. */
  describe(what: string): string {
    return this.address ? `${this.address.host}:${this.address.port}` : what;
  }
}

// Socket listeners are module functions shared by every connection: no closures per connection.
function onSocketConnect(this: LinkedSocket): void {
  const link = this[kLink];
  if (link) link.owner[kOnConnect](link);
}
function onSocketData(this: LinkedSocket, chunk: Buffer): void {
  const link = this[kLink];
  if (link) link.owner[kOnData](link, chunk);
}
function onSocketError(this: LinkedSocket, err: Error): void {
  const link = this[kLink];
  if (link) link.owner[kOnError](link, err);
}
function onSocketClose(this: LinkedSocket): void {
  const link = this[kLink];
  if (link) link.owner[kOnClose](link);
}

function listenTo(socket: LinkedSocket, link: Link, connected: 'connect' | 'secureConnect'): void {
  socket[kLink] = link;
  socket.on(connected, onSocketConnect);
  socket.on('data', onSocketData);
  socket.on('error', onSocketError);
  socket.on('close', onSocketClose);
}

/**
 * A connection for `owner` whose socket does not connect yet: {@link dialLink} connects it once
 * the address is known, or `socket.destroy(err)` fails it (its error and close are reported).
 */
export function pendingLink(owner: LinkOwner, tls?: ClientTlsOptions): Link {
  const socket: LinkedSocket = new Socket();
  socket.setNoDelay(true);
  const link = new Link(owner, socket, tls);
  listenTo(socket, link, 'connect');
  return link;
}

/**
 * Connects a pending link to `address` (nothing when it was discarded meanwhile); returns it.
 * Over TLS the pending socket is let go quietly and a TLS socket to `address` replaces it (its
 * server name is only known now); the link is connected when the handshake is done.
 */
export function dialLink(link: Link, address: ServerAddress): Link {
  if (link.socket.destroyed) return link;
  link.address = address;
  if (link.tls === undefined) {
    link.socket.connect({ host: address.host, port: address.port });
    return link;
  }
  const pending = link.socket as LinkedSocket;
  pending[kLink] = undefined;
  pending.destroy();
  const socket = connectTls(tlsConnectOptions(address.host, address.port, link.tls));
  socket.setNoDelay(true);
  link.socket = socket;
  listenTo(socket, link, 'secureConnect');
  return link;
}

/** Opens a TCP (or TLS) connection to `address` for `owner`. */
export function openLink(owner: LinkOwner, address: ServerAddress, tls?: ClientTlsOptions): Link {
  return dialLink(pendingLink(owner, tls), address);
}
