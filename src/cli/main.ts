#!/usr/bin/env node
import { ConfigError, describeConfig, loadConfig } from '../config/index.js';
import { mintBindToken } from '../crypto/bind-token.js';
import { generateRsaKeyPair, privateKeyToBase64, publicKeyToBase64 } from '../crypto/index.js';
import { MpushNode } from '../node.js';
import { parseArgs } from './args.js';

const usage = `mpush — an MPush-compatible push system

usage:
  mpush start [--config file.json] [--port 3000] [--http-port 8080] [--<group>.<key>=value ...]
  mpush keygen                         print a new RSA key pair (private PKCS#8, public SPKI; base64)
  mpush token --secret S --user U [--ttl 3600]
                                       mint a bind token for auth.bindSecret
  mpush config                         list every config key, its environment name and default
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
};

async function start(flags: Record<string, string | boolean>): Promise<void> {
  const file = typeof flags.config === 'string' ? flags.config : undefined;
  const overrides: Record<string, string | boolean> = {};
  for (const [k, v] of Object.entries(flags)) {
    if (k === 'config') continue;
    overrides[aliases[k] ?? k] = v;
  }
  const config = loadConfig({ ...(file ? { file } : {}), env: process.env, flags: overrides });
  const node = new MpushNode({ config });
  const { tcpPort, httpPort } = await node.start();
  const out = process.stdout;
  out.write(`mpush-ts node started (in-memory stores)\n`);
  out.write(`  devices, TCP (MPush binary protocol): ${config.server.host}:${tcpPort}\n`);
  if (config.http.wsEnabled)
    out.write(
      `  devices, WebSocket (MPush JSON protocol): ws://${config.http.host}:${httpPort}${config.http.wsPath}\n`,
    );
  out.write(`  HTTP: http://${config.http.host}:${httpPort}  (GET /public-key, GET /health)\n`);
  out.write(`  RSA key: ${node.keys.source}\n`);
  out.write(`  public key for MPush SDKs (base64 X.509):\n  ${node.keys.publicKeyBase64}\n`);
  if (config.auth.bindSecret) out.write('  bind tokens required (auth.bindSecret is set)\n');

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
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function main(argv: string[]): Promise<void> {
  const { positional, flags } = parseArgs(argv);
  const cmd = positional[0];
  switch (cmd) {
    case 'start':
      return start(flags);
    case 'keygen': {
      const { privateKey, publicKey } = generateRsaKeyPair(1024);
      process.stdout.write(
        `${JSON.stringify({ privateKey: privateKeyToBase64(privateKey), publicKey: publicKeyToBase64(publicKey) }, null, 2)}\n`,
      );
      return;
    }
    case 'token': {
      const secret = flags.secret;
      const user = flags.user;
      if (typeof secret !== 'string' || typeof user !== 'string')
        throw new ConfigError('token needs --secret and --user');
      const ttl = typeof flags.ttl === 'string' ? Number(flags.ttl) : 3600;
      if (!Number.isInteger(ttl) || ttl <= 0)
        throw new ConfigError('--ttl must be a positive integer (seconds)');
      process.stdout.write(`${mintBindToken(secret, user, ttl)}\n`);
      return;
    }
    case 'config':
      for (const row of describeConfig()) {
        process.stdout.write(
          `${row.key} (${row.env}, ${row.type}, default ${JSON.stringify(row.default)})\n    ${row.doc}\n`,
        );
      }
      return;
    default:
      process.stdout.write(usage);
      if (cmd && cmd !== 'help') process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`mpush: ${err instanceof ConfigError ? err.message : err.stack}\n`);
  process.exit(1);
});
