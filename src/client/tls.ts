// TLS for the SDKs' Node connections (device TCP client, PushSender): one option shape, one way
// of turning it into tls.connect's options.

import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';

/**
 * TLS options of a connection (Node's `tls.connect` options that matter here). `ca` pins: when
 * given, only these CAs (PEM; a self-signed certificate counts as its own CA) are trusted, not
 * the system's. `cert` and `key` are a client certificate, for a gateway that requires one
 * (tls.ca on the node). `servername` is the name checked against the server's certificate
 * (default: the host dialed). Leave `rejectUnauthorized` on outside tests.
 */
export type ClientTlsOptions = Pick<
  ConnectionOptions,
  | 'ca'
  | 'cert'
  | 'key'
  | 'passphrase'
  | 'servername'
  | 'rejectUnauthorized'
  | 'checkServerIdentity'
  | 'minVersion'
>;

/** `tls.connect` options to reach `host:port` with `options`; SNI names the host unless it is an IP. */
export function tlsConnectOptions(host: string, port: number, options: ClientTlsOptions): ConnectionOptions {
  const servername = options.servername ?? (isIP(host) === 0 ? host : undefined);
  return { ...options, host, port, ...(servername !== undefined ? { servername } : {}) };
}
