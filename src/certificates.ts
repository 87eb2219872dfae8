// The TLS certificate files at start-up and on SIGHUP, and the development certificate of
// `mpush start --tls-self-signed`. Disk I/O done while composing a node (as keys.ts), so the
// servers only ever receive secure-context options.

import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, rootCertificates, type SecureContextOptions } from 'node:tls';
import { generate } from 'selfsigned';
import { type Config, ConfigError } from './config/index.js';

/** What the TLS ports are given, read from tls.cert, tls.key and tls.ca. */
export interface ServerTls {
  /** The device TLS port and HTTPS: certificate and key. */
  server: SecureContextOptions;
  /** The TLS gateway: the same, and with tls.ca the CAs its clients' certificates must chain to. */
  gateway: SecureContextOptions;
  /** tls.ca is set: the gateway requests and verifies client certificates. */
  clientCertificates: boolean;
  /** SHA-256 fingerprint of the leaf certificate, for the banner and the logs. */
  fingerprint256: string;
  /** When the leaf certificate expires (its validTo). */
  validTo: string;
}

/** Some TLS port is on (tls.enabled, https.enabled or gateway.tls). */
export function tlsWanted(config: Config): boolean {
  return config.tls.enabled || config.https.enabled || config.gateway.tls;
}

function readPem(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${key}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/**
 * Reads and checks the certificate files; undefined when no TLS port is on. A TLS port without
 * tls.cert and tls.key, tls.ca without gateway.tls, an unreadable file or a key that does not
 * match the certificate is a ConfigError naming the key.
 */
export function loadServerTls(config: Config): ServerTls | undefined {
  const t = config.tls;
  if (t.ca && !config.gateway.tls)
    throw new ConfigError('tls.ca (client certificates on the gateway) needs gateway.tls');
  if (!tlsWanted(config)) return undefined;
  if (!t.cert || !t.key) {
    const on = [
      config.tls.enabled && 'tls.enabled',
      config.https.enabled && 'https.enabled',
      config.gateway.tls && 'gateway.tls',
    ].filter(Boolean);
    throw new ConfigError(
      `${on.join(', ')} needs tls.cert and tls.key (PEM files); for development: mpush start --tls-self-signed`,
    );
  }
  const cert = readPem('tls.cert', t.cert);
  const key = readPem('tls.key', t.key);
  const ca = t.ca ? readPem('tls.ca', t.ca) : undefined;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (err) {
    throw new ConfigError(`tls.cert / tls.key / tls.ca unusable: ${(err as Error).message}`);
  }
  return {
    server: { cert, key },
    gateway: { cert, key, ...(ca ? { ca } : {}) },
    clientCertificates: ca !== undefined,
    fingerprint256: leaf.fingerprint256,
    validTo: leaf.validTo,
  };
}

/**
 * What this node's own push clients (the HTTP API's PushSender) connect to TLS gateways with: the
 * system's CAs, this node's certificate and tls.ca trusted (cluster nodes share a certificate or
 * a CA); with tls.ca, this node's certificate and key presented as the client certificate.
 */
export function gatewayClientTls(tls: ServerTls): {
  ca: Array<string | Buffer>;
  cert?: Buffer;
  key?: Buffer;
} {
  const own = tls.gateway;
  const ca: Array<string | Buffer> = [...rootCertificates, own.cert as Buffer];
  if (own.ca) ca.push(own.ca as Buffer);
  return tls.clientCertificates ? { ca, cert: own.cert as Buffer, key: own.key as Buffer } : { ca };
}

/** Where a development certificate lives, and whether it was made just now. */
export interface DevCertificate {
  cert: string;
  key: string;
  generated: boolean;
  fingerprint256: string;
}

/**
 * `--tls-self-signed`: a self-signed certificate for localhost, 127.0.0.1, ::1 and this host's
 * name, kept in `dataDir` (tls-dev-cert.pem, tls-dev-key.pem) and reused while it has more than
 * a day left, so a client that pinned it keeps working across restarts. For development only:
 * clients must be told to trust it (pin it as their CA).
 */
export async function devCertificate(dataDir: string, now = new Date()): Promise<DevCertificate> {
  const cert = join(dataDir, 'tls-dev-cert.pem');
  const key = join(dataDir, 'tls-dev-key.pem');
  if (existsSync(cert) && existsSync(key)) {
    const x = new X509Certificate(readFileSync(cert));
    if (new Date(x.validTo).getTime() - now.getTime() > 86_400_000)
      return { cert, key, generated: false, fingerprint256: x.fingerprint256 };
  }
  const name = hostname();
  const pems = await generate([{ name: 'commonName', value: 'mpush-ts development' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + 365 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          ...(name && name !== 'localhost' ? [{ type: 2 as const, value: name }] : []),
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(key, pems.private, { mode: 0o600 });
  writeFileSync(cert, pems.cert);
  return { cert, key, generated: true, fingerprint256: new X509Certificate(pems.cert).fingerprint256 };
}
