import type { Config } from './schema.js';

/** What a secret reads as when shown. */
export const REDACTED = '<redacted>';

/**
 * Keys whose values are credentials, by name, so a key added later is hidden without being listed:
 * gateway.secret, api.secret, webhooks.secret, auth.bindSecret, security.privateKey,
 * cluster.zookeeperDigest. File paths (a TLS key file, say) and public keys are shown.
 */
const SECRET_NAME = /secret|password|passphrase|privatekey|digest|token/i;

/**
 * The user:password part of a URL (`redis://:pw@host`, `https://u:pw@hook`), also inside a list: up
 * to the last `@` of the list item, since a password may hold `@` or `/` (a URL parser reads
 * `redis://:p@ss@h` as password `p@ss`). A path with an `@` in it is cut too: shown too little, never
 * too much.
 */
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)[^\s,]*@/gi;

/** Is `group.key` a credential whose value must never be shown? */
export function isSecretKey(path: string): boolean {
  return SECRET_NAME.test(path.slice(path.indexOf('.') + 1));
}

/** One value as it may be shown: a secret that is set reads as {@link REDACTED}, URL credentials too. */
export function redactValue(path: string, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  if (isSecretKey(path)) return value === '' ? '' : REDACTED;
  return value.replace(URL_CREDENTIALS, `$1${REDACTED}@`);
}

/** The whole configuration with every secret redacted: what an operator's view may print. */
export function redactedConfig(config: Config): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [group, keys] of Object.entries(config)) {
    out[group] = {};
    for (const [key, v] of Object.entries(keys as Record<string, unknown>)) {
      out[group][key] = redactValue(`${group}.${key}`, v);
    }
  }
  return out;
}
