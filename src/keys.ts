// The server's key pair at start-up: reads key files and keeps a generated pair in node.dataDir.
// Disk I/O done once while composing a node, so it sits beside node.ts and the CLI that use it,
// not in server/, whose connection server only ever receives a KeyObject.

import type { KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config/index.js';
import {
  generateRsaKeyPair,
  loadPrivateKey,
  loadPublicKey,
  privateKeyToBase64,
  publicKeyOf,
  publicKeyToBase64,
} from './crypto/index.js';

export interface ServerKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** base64 X.509 SPKI DER: what MPush SDKs are configured with. */
  publicKeyBase64: string;
  /** Where the key came from, for the start-up banner. */
  source: string;
}

/** A config value may name a file (`file:/path` or an existing path) instead of holding the key. */
function keyText(value: string): string {
  const path = value.startsWith('file:') ? value.slice(5) : value;
  if (!value.includes('\n') && value.length < 4096 && existsSync(path)) return readFileSync(path, 'utf8');
  return value;
}

/**
 * The server's RSA key pair: from `security.privateKey` (MPush's non-CRT keys included, so an
 * operator keeps the pair their deployed SDKs were built with), or generated on first start and
 * kept in `node.dataDir/rsa-key.json` so restarts keep the same public key.
 */
export function loadServerKeys(config: Config): ServerKeys {
  const { privateKey: priv, publicKey: pub } = config.security;
  if (priv) {
    const publicHint = pub ? loadPublicKey(keyText(pub)) : undefined;
    const privateKey = loadPrivateKey(keyText(priv), publicHint);
    const publicKey = publicKeyOf(privateKey);
    return {
      privateKey,
      publicKey,
      publicKeyBase64: publicKeyToBase64(publicKey),
      source: 'security.privateKey',
    };
  }
  const file = join(config.node.dataDir, 'rsa-key.json');
  if (existsSync(file)) {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { privateKey: string };
    const privateKey = loadPrivateKey(stored.privateKey);
    const publicKey = publicKeyOf(privateKey);
    return { privateKey, publicKey, publicKeyBase64: publicKeyToBase64(publicKey), source: file };
  }
  const { privateKey, publicKey } = generateRsaKeyPair(1024);
  mkdirSync(config.node.dataDir, { recursive: true });
  const publicKeyBase64 = publicKeyToBase64(publicKey);
  writeFileSync(
    file,
    `${JSON.stringify({ privateKey: privateKeyToBase64(privateKey), publicKey: publicKeyBase64 }, null, 2)}\n`,
    {
      mode: 0o600,
    },
  );
  return { privateKey, publicKey, publicKeyBase64, source: `${file} (generated)` };
}
