// One TCP connection of a DeviceClient: its socket and the socket's listeners (the connection's
// timers belong to the session, device-session.ts). Listeners are module functions
// shared by every connection, finding their Link through a symbol (as connection/tcp-transport.ts):
// no closures per connection.

import { connect as netConnect, type Socket } from 'node:net';
import type { ServerAddress } from './tcp-client-options.js';

/** {@link LinkOwner} method: the socket connected. */
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
  constructor(
    readonly owner: LinkOwner,
    readonly socket: Socket,
    readonly address: ServerAddress,
  ) {}
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

/** Opens a TCP connection to `address` for `owner`. */
export function openLink(owner: LinkOwner, address: ServerAddress): Link {
  const socket: LinkedSocket = netConnect({ host: address.host, port: address.port });
  socket.setNoDelay(true);
  const link = new Link(owner, socket, address);
  socket[kLink] = link;
  socket.on('connect', onSocketConnect);
  socket.on('data', onSocketData);
  socket.on('error', onSocketError);
  socket.on('close', onSocketClose);
  return link;
}
