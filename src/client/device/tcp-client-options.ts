import type { KeyObject } from 'node:crypto';
import type { ClientTlsOptions } from '../tls.js';
import type { ReconnectOptions } from './backoff.js';
import { type BinaryWireSettings, binaryWireSettings } from './binary-wire.js';
import type { DeviceProfile } from './device-protocol.js';
import { type DeviceSessionOptions, resolveSessionOptions } from './device-session.js';
import { MemorySessionStorage, type SessionStorage } from './session-storage.js';

/** One connection server address. */
export interface ServerAddress {
  /** Host name or IP address. */
  host: string;
  /** Port of the server's device port (3000 by default; its TLS port, 3443, with `tls`). */
  port: number;
}

/**
 * Options of {@link DeviceClient}. Only `publicKey`, `deviceId` and `servers` or `allocUrl` (or both)
 * are required.
 */
export interface DeviceClientOptions {
  /**
   * Connection servers; on a failed attempt the next one is tried, round robin. With `allocUrl`,
   * the fallback used when the allocator fails (optional then).
   */
  servers?: ReadonlyArray<ServerAddress>;
  /**
   * MPush's allocator (the Java SDK's `allotServer`), e.g. `http://host:8080/alloc`: fetched before
   * each connection attempt that has no untried address left from the last answer (and after every
   * connection that got as far as a handshake), answering `host:port,host:port`; the addresses are
   * tried in that order. When it fails, `servers` are tried instead (or the attempt fails and the
   * client reconnects with backoff).
   */
  allocUrl?: string;
  /** One allocator request, body included, must finish within this. Default 5000 ms. */
  allocTimeoutMs?: number;
  /** Largest allocator body accepted; a longer one fails the request. Default 4096 bytes. */
  allocMaxBytes?: number;
  /**
   * The server's RSA public key: base64 of the X.509 SubjectPublicKeyInfo DER (what MPush SDKs are
   * configured with), PEM, or a loaded key (share one `KeyObject` across many clients).
   */
  publicKey: string | KeyObject;
  /** The device's id, sent at the handshake: one per physical device (it names its fast-connect session). */
  deviceId: string;
  /** Decides the client type on the server (mpush-wire §8). Default `'android'`. */
  osName?: string;
  /** Sent at the handshake. Default `''`. */
  osVersion?: string;
  /** Sent at the handshake. Default `''`. */
  clientVersion?: string;
  /**
   * Connect with TLS (the server's `tls.port`; the MPush protocol runs inside as over TCP): `true`
   * trusts the system's CAs; `{ ca }` pins: only that CA (PEM; a self-signed certificate, such as
   * `--tls-self-signed` writes, is its own CA) is trusted. The certificate must name the host
   * dialed (or `servername`). Every address (`servers`, the allocator's) is dialed so.
   */
  tls?: boolean | ClientTlsOptions;
  /** When set, the user is bound after every handshake (as the Java SDK re-binds). */
  userId?: string;
  /** Bind tags, sent as one string (an array is joined with `,`). */
  tags?: string | ReadonlyArray<string>;
  /** The bind `data` slot (the Java SDK's alias): where a bind token goes. */
  bindData?: string;
  /** The maxHeartbeat asked at the handshake, in ms. Default 240 000 (the Java SDK's). */
  heartbeatMs?: number;
  /** The minHeartbeat sent at the handshake (MPush ignores it). Default: `heartbeatMs`. */
  minHeartbeatMs?: number;
  /**
   * Reconnect after a lost connection, when its reason allows (see the disconnect catalogue: not
   * after a protocol error, a refused handshake or bind, or a kick). Default true.
   */
  autoReconnect?: boolean;
  /** Backoff between reconnects. */
  reconnect?: ReconnectOptions;
  /**
   * Where the fast-connect session is kept. Default: in memory (fast connect across reconnects of
   * this process); `null` disables fast connect.
   */
  sessionStorage?: SessionStorage | null;
  /** Largest packet body accepted from the server. Default 1 MiB. */
  maxPacketSize?: number;
  /** Largest inflated body of a COMPRESS packet (decompression bombs). Default 4 MiB. */
  maxInflateBytes?: number;
  /** Bodies longer than this are zlib-compressed before encryption. Default 1024 (the Java SDK's). */
  compressThreshold?: number;
  /** TCP connect + handshake must finish within this. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Bind, unbind and acked pushes fail after this. Default 10 000 ms. */
  requestTimeoutMs?: number;
  /**
   * How many recently delivered PushMsg `msgId`s are remembered: a push whose msgId is among them is
   * dropped (a `duplicate` event, acked if it asks for an ack). 0 turns it off. Default 1000.
   */
  dedupWindow?: number;
}

/** {@link DeviceClientOptions} with every default applied. */
export interface ResolvedDeviceClientOptions {
  servers: ReadonlyArray<ServerAddress>;
  /** Undefined: no allocator, `servers` only. */
  alloc: { url: string; timeoutMs: number; maxBytes: number } | undefined;
  deviceId: string;
  profile: DeviceProfile;
  wire: BinaryWireSettings;
  session: DeviceSessionOptions;
  storage: SessionStorage | undefined;
  /** Undefined: plain TCP. */
  tls: ClientTlsOptions | undefined;
}

/** Checks and completes the options. */
export function resolveDeviceClientOptions(options: DeviceClientOptions): ResolvedDeviceClientOptions {
  const servers = options.servers ?? [];
  if (servers.length === 0 && !options.allocUrl)
    throw new TypeError('DeviceClient needs at least one server or an allocUrl');
  if (!options.deviceId) throw new TypeError('DeviceClient needs a deviceId');
  const heartbeatMs = options.heartbeatMs ?? 240_000;
  return {
    servers: servers.map((s) => ({ host: s.host, port: s.port })),
    alloc: options.allocUrl ? resolveAlloc(options) : undefined,
    deviceId: options.deviceId,
    profile: {
      osName: options.osName ?? 'android',
      osVersion: options.osVersion ?? '',
      clientVersion: options.clientVersion ?? '',
      minHeartbeat: options.minHeartbeatMs ?? heartbeatMs,
      maxHeartbeat: heartbeatMs,
    },
    wire: binaryWireSettings({
      publicKey: options.publicKey,
      maxPacketSize: options.maxPacketSize,
      maxInflateBytes: options.maxInflateBytes,
      compressThreshold: options.compressThreshold,
    }),
    session: resolveSessionOptions(options),
    storage:
      options.sessionStorage === null ? undefined : (options.sessionStorage ?? new MemorySessionStorage()),
    tls: options.tls === true ? {} : options.tls || undefined,
  };
}

function positiveInt(name: string, value: number | undefined, def: number): number {
  if (value === undefined) return def;
  if (!Number.isInteger(value) || value < 1)
    throw new TypeError(`${name} must be an integer ≥ 1, got ${value}`);
  return value;
}

function resolveAlloc(o: DeviceClientOptions): NonNullable<ResolvedDeviceClientOptions['alloc']> {
  const url = o.allocUrl!;
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol))
    throw new TypeError(`allocUrl must be an http(s) URL, got ${JSON.stringify(url)}`);
  return {
    url,
    timeoutMs: positiveInt('allocTimeoutMs', o.allocTimeoutMs, 5000),
    maxBytes: positiveInt('allocMaxBytes', o.allocMaxBytes, 4096),
  };
}
