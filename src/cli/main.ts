#!/usr/bin/env node
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { type DevCertificate, devCertificate } from '../certificates.js';
import { PushSender } from '../client/push/push-sender.js';
import type { ClientTlsOptions } from '../client/tls.js';
import { type Config, ConfigError, describeConfig, loadConfig } from '../config/index.js';
import { mintBindToken } from '../crypto/bind-token.js';
import { generateRsaKeyPair, privateKeyToBase64, publicKeyToBase64 } from '../crypto/index.js';
import { loadServerKeys } from '../keys.js';
import { MpushNode } from '../node.js';
import { MAX_MESSAGE_ID_LENGTH } from '../protocol/index.js';
import { type Flags, type FlagTable, parseFlags, splitConfigFlags, UsageError } from './args.js';
import { launchFlags, relaunch, semiSpaceFlag, watchLauncher } from './launch.js';

const usage = `mpush — an MPush-compatible push system

usage:
  mpush start [--config file.json] [--port 3000] [--http-port 8080] [--<group>.<key>=value ...]
              [--redis redis://host:6379 [--workers N]]   join a cluster; N worker nodes on this machine
              [--zookeeper host:2181]   also register in ZooKeeper for MPush's own PushClient
              [--tls-self-signed]   TLS for devices (tls.port) and HTTPS/WSS (https.port) with a
                                    development certificate kept in node.dataDir; SIGHUP re-reads
                                    tls.cert / tls.key / tls.ca without dropping connections
  mpush push --user U[,U2...] --content TEXT [--ack none|auto|biz] [--timeout MS]
             [--store [--ttl SECONDS]] [--msg-id ID] [--gateway host:port] [--secret S]
             [--tls [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--tls-servername NAME]]
                                       push through a gateway with PushSender; prints the results
                                       (each names its messageId and whether it was stored);
                                       --store keeps it in the inbox of a user offline or not
                                       acking; exit 3 when a result is neither success nor stored
  mpush broadcast --content TEXT [--tags a,b] [--condition EXPR] [--ack ...] [--rate N] [--max N]
             [--gateway host:port] [--secret S] [--tls ...]
                                       broadcast and print the counts;
                                       --tls: to a gateway.tls gateway (--tls-ca pins its CA;
                                       --tls-cert/--tls-key: the client certificate tls.ca asks for)
  mpush keygen                         print a new RSA key pair (private PKCS#8, public SPKI; base64)
  mpush token --secret S --user U [--ttl 3600]
                                       mint a bind token for auth.bindSecret
  mpush config                         list every config key, its environment name and default

start's short forms: --port --host --http-port --gateway-port --admin-port --data-dir --log-level --redis --workers
  --zookeeper --bind-secret --private-key --gateway-secret --api-secret; any config key is a flag (mpush config).
An unknown flag, or a flag without its value, is an error (exit 2). -h, --help: this text.
`;

/** Short flags for the keys people set most. */
const aliases: Record<string, string> = {
  port: 'server.port',
  host: 'server.host',
  'http-port': 'http.port',
  'data-dir': 'node.dataDir',
  'log-level': 'log.level',
  'bind-secret': 'auth.bindSecret',
  'private-key': 'security.privateKey',
  'gateway-port': 'gateway.port',
  'admin-port': 'admin.port',
  'gateway-secret': 'gateway.secret',
  'api-secret': 'api.secret',
  redis: 'cluster.redis',
  workers: 'cluster.workers',
  zookeeper: 'cluster.zookeeper',
};

const value = { type: 'string' } as const;
const help = { help: { type: 'boolean', short: 'h' } } as const;

/** `start`'s own flags; any other `--<key>` is a config key, checked by the config loader. */
const startFlags: FlagTable = {
  ...help,
  config: value,
  'tls-self-signed': { type: 'boolean' },
  ...Object.fromEntries(Object.keys(aliases).map((name) => [name, value])),
};
const sendFlags = {
  ...help,
  gateway: value,
  secret: value,
  content: value,
  ack: value,
  timeout: value,
  tls: { type: 'boolean' },
  'tls-ca': value,
  'tls-cert': value,
  'tls-key': value,
  'tls-servername': value,
} as const;
const pushFlags = {
  ...sendFlags,
  user: value,
  store: { type: 'boolean' },
  ttl: value,
  'msg-id': value,
} as const;
const broadcastFlags = { ...sendFlags, tags: value, condition: value, rate: value, max: value } as const;
const tokenFlags = { ...help, secret: value, user: value, ttl: value } as const;

async function start(argv: string[]): Promise<void> {
  const { rest, keys } = splitConfigFlags(argv, startFlags);
  const flags = parseFlags('start', rest, startFlags);
  if (flags.help) return void process.stdout.write(usage);
  const file = typeof flags.config === 'string' ? flags.config : undefined;
  const overrides: Record<string, string | boolean> = {};
  for (const [name, v] of Object.entries(flags)) {
    const key = aliases[name];
    if (key && typeof v === 'string') overrides[key] = v;
  }
  Object.assign(overrides, keys);
  const config = loadConfig({ ...(file ? { file } : {}), env: process.env, flags: overrides });
  // Before forking: the primary makes the certificate, its workers find it in node.dataDir.
  const dev = flags['tls-self-signed'] ? await useDevCertificate(config) : undefined;
  const nodeFlags = launchFlags(config, process.execArgv, process.env.NODE_OPTIONS ?? '');
  if (config.cluster.workers > 1 && cluster.isPrimary) return startWorkers(config, nodeFlags);
  // The primary of --workers passes them to its workers; a single node runs in a node that has them
  // (relaunched, it finds a development certificate in node.dataDir, as a worker does).
  if (nodeFlags.length > 0 && cluster.isPrimary) return relaunch(nodeFlags);
  watchLauncher();
  const worker = Number(process.env.MPUSH_WORKER_INDEX ?? 0);
  // Each worker is a cluster node of its own: the public ports are shared, the gateway is not.
  if (worker > 0 && config.gateway.port !== 0) config.gateway.port += worker;
  if (worker > 0 && config.admin.port !== 0) config.admin.port += worker;
  // The console's `shutdown` (admin.allowShutdown) stops the process as SIGTERM does.
  const node = new MpushNode({ config, onShutdown: () => stop('admin console shutdown') });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    node.log.info(`${signal}: shutting down`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    node.stop().then(
      () => process.exit(0),
      (err: Error) => {
        node.log.error('shutdown failed', { err: err.message });
        process.exit(1);
      },
    );
  };
  // Before start: a signal during start-up still stops the node cleanly.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => reloadTls(node));
  const { tcpPort, httpPort, gatewayPort, adminPort, tlsPort, httpsPort } = await node.start();
  const out = process.stdout;
  out.write(
    `mpush-ts node ${node.id} started (${node.stores.kind})${cluster.isWorker ? ` [worker ${worker}]` : ''}\n`,
  );
  if (tcpPort) out.write(`  devices, TCP (MPush binary protocol): ${config.server.host}:${tcpPort}\n`);
  if (tlsPort) out.write(`  devices, TLS (MPush binary protocol): ${config.server.host}:${tlsPort}\n`);
  if (httpPort && config.http.wsEnabled) {
    out.write(
      `  devices, WebSocket (MPush JSON protocol): ws://${config.http.host}:${httpPort}${config.http.wsPath}\n`,
    );
  }
  if (httpsPort && config.http.wsEnabled) {
    out.write(`  devices, WSS: wss://${config.http.host}:${httpsPort}${config.http.wsPath}\n`);
  }
  const gatewayTls = !config.gateway.tls
    ? ''
    : node.tls?.clientCertificates
      ? ', TLS with client certificates'
      : ', TLS';
  out.write(`  gateway (push clients, PushSender)${gatewayTls}: ${config.gateway.host}:${gatewayPort}\n`);
  const routes =
    '(POST /api/push, /api/broadcast; GET /public-key, /health, /alloc, /metrics; console /admin/)';
  if (httpPort) out.write(`  HTTP: http://${config.http.host}:${httpPort}  ${routes}\n`);
  if (httpsPort) out.write(`  HTTPS: https://${config.http.host}:${httpsPort}  ${routes}\n`);
  if (node.tls) {
    const made = dev ? (dev.generated ? ' (self-signed, generated)' : ' (self-signed)') : '';
    out.write(
      `  TLS certificate: ${config.tls.cert}${made}, sha256 ${node.tls.fingerprint256}, expires ${node.tls.validTo}\n`,
    );
  }
  if (config.admin.enabled) {
    out.write(`  telnet console (MPush's; no login): ${config.admin.host}:${adminPort}\n`);
  }
  if (node.http.apiSecretGenerated) {
    out.write(`  HTTP API bearer secret (generated; set api.secret to choose one): ${node.http.apiSecret}\n`);
  }
  out.write(`  V8 young generation: ${semiSpaceFlag() ?? "V8's default"} (node.maxSemiSpaceMb)\n`);
  out.write(`  RSA key: ${node.keys.source}\n`);
  out.write(`  public key for MPush SDKs (base64 X.509):\n  ${node.keys.publicKeyBase64}\n`);
  if (config.auth.bindSecret) out.write('  bind tokens required (auth.bindSecret is set)\n');
  const files = openFileLimit();
  if (files !== undefined && config.limits.maxConnections > files - 200) {
    out.write(
      `  warning: limits.maxConnections (${config.limits.maxConnections}) is above what this process may open (${files} files); ` +
        `set it to about ${Math.max(1, files - 500)}, or run --workers to use more processes\n`,
    );
  }
}

/**
 * `--tls-self-signed`: the development certificate (made, or reused, in node.dataDir) becomes
 * tls.cert / tls.key, and the device TLS port and HTTPS are turned on.
 */
async function useDevCertificate(config: Config): Promise<DevCertificate> {
  if (config.tls.cert || config.tls.key)
    throw new ConfigError('--tls-self-signed makes its own certificate: leave tls.cert and tls.key unset');
  const dev = await devCertificate(config.node.dataDir);
  config.tls.cert = dev.cert;
  config.tls.key = dev.key;
  config.tls.enabled = true;
  config.https.enabled = true;
  return dev;
}

/** SIGHUP: the certificate files again; a file that does not load leaves the old ones in use. */
function reloadTls(node: MpushNode): void {
  try {
    const tls = node.reloadTls();
    if (tls) node.log.info('tls certificates reloaded', { sha256: tls.fingerprint256, validTo: tls.validTo });
  } catch (err) {
    node.log.error('tls reload failed; the old certificates stay in use', { err: (err as Error).message });
  }
}

/** The soft limit on open files of this process (Linux), or undefined where /proc does not say. */
function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const n = Number(line?.split(/\s+/)[3]);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `--workers N`: N worker processes, each a cluster node on the shared Redis, sharing the public
 * TCP and HTTP ports through node:cluster (a process uses one core and at most 20,000 files
 * here). The primary keeps the RSA key (generated once, before forking), restarts a worker that
 * dies, and stops them all on SIGTERM/SIGINT.
 */
function startWorkers(config: Config, nodeFlags: string[]): void {
  if (!config.cluster.redis)
    throw new ConfigError('--workers needs --redis: workers share routes and sessions through it');
  const keys = loadServerKeys(config);
  process.stdout.write(
    `mpush-ts primary ${process.pid}: ${config.cluster.workers} workers, RSA key ${keys.source}\n`,
  );
  let stopping = false;
  cluster.setupPrimary({ execArgv: [...process.execArgv, ...nodeFlags] });
  const fork = (index: number) => {
    const w = cluster.fork({ MPUSH_WORKER_INDEX: String(index) });
    w.on('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(`mpush: worker ${index} exited (${signal ?? code}); restarting\n`);
      setTimeout(() => fork(index), 1000);
    });
  };
  for (let i = 0; i < config.cluster.workers; i++) fork(i);
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {});
    for (const w of workers) w?.process.kill('SIGTERM');
    const force = setTimeout(() => process.exit(1), 12_000);
    force.unref();
    let left = workers.length;
    if (left === 0) process.exit(0);
    for (const w of workers) w?.once('exit', () => --left === 0 && process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Each worker holds its own TLS servers: each re-reads the certificate files.
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });
}

const ackModels: Record<string, 'NO_ACK' | 'AUTO_ACK' | 'BIZ_ACK'> = {
  none: 'NO_ACK',
  auto: 'AUTO_ACK',
  biz: 'BIZ_ACK',
};

/** What `push` and `broadcast` may be given (each refuses the other's own flags). */
type SendFlags = Flags<typeof sendFlags> & {
  user?: string;
  store?: boolean;
  ttl?: string;
  'msg-id'?: string;
  tags?: string;
  condition?: string;
  rate?: string;
  max?: string;
};

/** A whole number ≥ `min` given as `--<name>`, or undefined when the flag is absent or empty. */
function integerFlag(name: string, raw: string | undefined, min: number, what: string): number | undefined {
  if (!raw) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`--${name} must be ${what}`);
  return n;
}

/** `--tls` and its `--tls-*` flags (any of which implies `--tls`): PushSender's `tls`. */
function tlsFlags(flags: SendFlags): ClientTlsOptions | undefined {
  const file = (name: 'tls-ca' | 'tls-cert' | 'tls-key'): Buffer | undefined => {
    const path = flags[name];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(`--${name}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  const ca = file('tls-ca');
  const cert = file('tls-cert');
  const key = file('tls-key');
  const servername = flags['tls-servername'];
  if ((cert === undefined) !== (key === undefined))
    throw new ConfigError('--tls-cert and --tls-key go together (a client certificate and its key)');
  if (!flags.tls && !ca && !cert && servername === undefined) return undefined;
  return {
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    ...(servername !== undefined ? { servername } : {}),
  };
}

async function pushCommand(cmd: 'push' | 'broadcast', flags: SendFlags): Promise<void> {
  const [host, port] = (flags.gateway ?? '127.0.0.1:3001').split(':');
  const secret = flags.secret ?? process.env.MPUSH_GATEWAY_SECRET;
  const content = flags.content;
  if (content === undefined) throw new ConfigError(`${cmd} needs --content`);
  const ack = flags.ack ?? 'none';
  // Own keys only: `--ack constructor` must not find Object.prototype's.
  const ackModel = Object.hasOwn(ackModels, ack) ? ackModels[ack] : undefined;
  if (!ackModel) throw new ConfigError('--ack must be none, auto or biz');
  const timeout = integerFlag('timeout', flags.timeout, 1, 'a positive integer (ms)');
  const users = flags.user;
  if (cmd === 'push' && !users) throw new ConfigError('push needs --user');
  const rate = integerFlag('rate', flags.rate, 0, 'an integer ≥ 0 (devices per second)');
  const max = integerFlag('max', flags.max, 0, 'an integer ≥ 0 (devices)');
  const ttl = integerFlag('ttl', flags.ttl, 1, 'a positive integer (seconds)');
  if (ttl !== undefined && !flags.store) throw new ConfigError('--ttl needs --store');
  const msgId = flags['msg-id'];
  if (msgId !== undefined && (msgId === '' || msgId.length > MAX_MESSAGE_ID_LENGTH))
    throw new ConfigError(`--msg-id must be 1 to ${MAX_MESSAGE_ID_LENGTH} characters`);
  const tls = tlsFlags(flags);
  const sender = PushSender.create({
    gateways: [{ host: host || '127.0.0.1', port: Number(port || 3001) }],
    ...(secret ? { gatewaySecret: secret } : {}),
    ...(tls ? { tls } : {}),
    clientId: 'mpush-cli',
  });
  try {
    await sender.start();
    if (cmd === 'push') {
      const results = await sender.send({
        userIds: users!.split(','),
        content,
        ackModel,
        ...(timeout ? { timeout } : {}),
        ...(flags.store ? { store: true } : {}),
        ...(ttl !== undefined ? { ttl } : {}),
        ...(msgId !== undefined ? { msgId } : {}),
      });
      process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
      // The results are the data (stdout); what went wrong is also said where a person looks.
      for (const r of results.filter((r) => r.result !== 'success')) {
        const kept = r.stored ? ', stored for later' : r.storeError ? `, store: ${r.storeError}` : '';
        if (!r.stored) process.exitCode = 3;
        process.stderr.write(`mpush: ${r.userId}: ${r.result}${r.reason ? ` (${r.reason})` : ''}${kept}\n`);
      }
    } else {
      const tags = flags.tags?.split(',').filter(Boolean);
      const condition = flags.condition;
      const result = await sender.broadcast({
        content,
        ackModel,
        ...(tags?.length ? { tags } : {}),
        ...(condition ? { condition } : {}),
        ...(timeout ? { timeout } : {}),
        ...(rate !== undefined ? { broadcastRate: rate } : {}),
        ...(max !== undefined ? { broadcastMax: max } : {}),
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      if (result.result !== 'success') {
        process.exitCode = 3;
        process.stderr.write(
          `mpush: broadcast ${result.taskId} failed (${result.reason ?? 'no reason given'})\n`,
        );
      }
    }
  } finally {
    await sender.stop();
  }
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'start':
      return start(rest);
    case 'push': {
      const flags = parseFlags(cmd, rest, pushFlags);
      return flags.help ? void process.stdout.write(usage) : pushCommand(cmd, flags);
    }
    case 'broadcast': {
      const flags = parseFlags(cmd, rest, broadcastFlags);
      return flags.help ? void process.stdout.write(usage) : pushCommand(cmd, flags);
    }
    case 'keygen': {
      if (parseFlags(cmd, rest, help).help) return void process.stdout.write(usage);
      const { privateKey, publicKey } = generateRsaKeyPair(1024);
      process.stdout.write(
        `${JSON.stringify({ privateKey: privateKeyToBase64(privateKey), publicKey: publicKeyToBase64(publicKey) }, null, 2)}\n`,
      );
      return;
    }
    case 'token': {
      const { help, secret, user, ttl: rawTtl } = parseFlags(cmd, rest, tokenFlags);
      if (help) return void process.stdout.write(usage);
      if (secret === undefined || user === undefined)
        throw new ConfigError('token needs --secret and --user');
      const ttl = integerFlag('ttl', rawTtl, 1, 'a positive integer (seconds)') ?? 3600;
      process.stdout.write(`${mintBindToken(secret, user, ttl)}\n`);
      return;
    }
    case 'config':
      if (parseFlags(cmd, rest, help).help) return void process.stdout.write(usage);
      for (const row of describeConfig()) {
        process.stdout.write(
          `${row.key} (${row.env}, ${row.type}, default ${JSON.stringify(row.default)})\n    ${row.doc}\n`,
        );
      }
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      parseFlags(cmd ?? 'mpush', rest, {});
      process.stdout.write(usage);
      return;
    default:
      process.stderr.write(`mpush: unknown command ${JSON.stringify(cmd)}\n`);
      process.stdout.write(usage);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  if (err instanceof UsageError) {
    process.stderr.write(`mpush ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`mpush: ${err instanceof ConfigError ? err.message : err.stack}\n`);
  process.exit(1);
});
