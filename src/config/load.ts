import { readFileSync } from 'node:fs';
import { closest } from '../util/closest.js';
import { ConfigError } from './config-error.js';
import { checkHttpProxyConfig, httpUrl } from './http-proxy.js';
import { type Config, type KeySpec, schema } from './schema.js';

export { ConfigError } from './config-error.js';

/** What overrides the defaults, lowest precedence first. */
export interface ConfigSources {
  /** A JSON file shaped like the schema (`{"server": {"port": 3000}}`). */
  file?: string;
  /** Environment variables (`MPUSH_SERVER_PORT=3000`). Defaults to none: pass `process.env` explicitly. */
  env?: Record<string, string | undefined>;
  /** Command-line overrides as dotted keys (`{"server.port": "3000"}`). */
  flags?: Record<string, string | boolean>;
  /** Programmatic overrides (tests), shaped like the config. */
  overrides?: DeepPartial<Config>;
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

function envName(group: string, key: string): string {
  return `MPUSH_${group}_${key}`.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
}

function coerce(path: string, spec: KeySpec, raw: unknown): number | string | boolean {
  switch (spec.type) {
    case 'int': {
      const n =
        typeof raw === 'number'
          ? raw
          : typeof raw === 'string' && raw.trim() !== ''
            ? Number(raw)
            : Number.NaN;
      if (!Number.isInteger(n))
        throw new ConfigError(`${path} must be an integer, got ${JSON.stringify(raw)}`);
      if (spec.min !== undefined && n < spec.min)
        throw new ConfigError(`${path} must be ≥ ${spec.min}, got ${n}`);
      if (spec.max !== undefined && n > spec.max)
        throw new ConfigError(`${path} must be ≤ ${spec.max}, got ${n}`);
      return n;
    }
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new ConfigError(`${path} must be true or false, got ${JSON.stringify(raw)}`);
    case 'string':
      if (typeof raw !== 'string')
        throw new ConfigError(`${path} must be a string, got ${JSON.stringify(raw)}`);
      if (spec.enum && !spec.enum.includes(raw)) {
        throw new ConfigError(`${path} must be one of ${spec.enum.join(', ')}, got ${JSON.stringify(raw)}`);
      }
      return raw;
  }
}

/**
 * Builds the configuration from defaults, then a file, the environment, flags and overrides.
 * Unknown keys are errors, so a typo never silently falls back to a default.
 */
export function loadConfig(sources: ConfigSources = {}): Config {
  const layers: Array<[string, Record<string, unknown>]> = [];
  if (sources.file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(sources.file, 'utf8'));
    } catch (e) {
      throw new ConfigError(`cannot read config file ${sources.file}: ${(e as Error).message}`);
    }
    layers.push([`file ${sources.file}`, flatten(parsed, '')]);
  }
  if (sources.env) {
    const fromEnv: Record<string, unknown> = {};
    for (const [group, keys] of Object.entries(schema)) {
      for (const key of Object.keys(keys)) {
        const v = sources.env[envName(group, key)];
        if (v !== undefined) fromEnv[`${group}.${key}`] = v;
      }
    }
    layers.push(['environment', fromEnv]);
  }
  if (sources.flags) layers.push(['flags', sources.flags]);
  if (sources.overrides) layers.push(['overrides', flatten(sources.overrides, '')]);

  const out: Record<string, Record<string, unknown>> = {};
  for (const [group, keys] of Object.entries(schema)) {
    out[group] = {};
    for (const [key, spec] of Object.entries(keys as Record<string, KeySpec>)) out[group][key] = spec.default;
  }
  for (const [origin, layer] of layers) {
    for (const [path, raw] of Object.entries(layer)) {
      const [group, key, ...rest] = path.split('.');
      const spec =
        group && key && rest.length === 0
          ? (schema as Record<string, Record<string, KeySpec>>)[group]?.[key]
          : undefined;
      if (!spec) {
        const near = closest(path, keyPaths());
        throw new ConfigError(
          `unknown config key "${path}" (from ${origin})${near ? `; did you mean "${near}"?` : ''}`,
        );
      }
      out[group!]![key!] = coerce(path, spec, raw);
    }
  }
  const config = out as unknown as Config;
  if (config.heartbeat.minMs > config.heartbeat.maxMs) {
    throw new ConfigError('heartbeat.minMs must not exceed heartbeat.maxMs');
  }
  const webhookUrls = parseWebhookUrls(config.webhooks.urls);
  if (webhookUrls.length > 0 && !config.webhooks.secret) {
    throw new ConfigError(
      'webhooks.secret is required when webhooks.urls is set (receivers check the signature)',
    );
  }
  if (config.webhooks.retryMinMs > config.webhooks.retryMaxMs) {
    throw new ConfigError('webhooks.retryMinMs must not exceed webhooks.retryMaxMs');
  }
  checkHttpProxyConfig(config);
  return config;
}

/**
 * The URLs of `webhooks.urls` (comma-separated, blanks ignored); one that does not parse, or is
 * not http(s), is a ConfigError naming it.
 */
export function parseWebhookUrls(list: string): URL[] {
  const urls: URL[] = [];
  for (const raw of list.split(',')) {
    const text = raw.trim();
    if (!text) continue;
    const url = httpUrl(text);
    if (url === 'not a URL') throw new ConfigError(`webhooks.urls: ${JSON.stringify(text)} is not a URL`);
    if (url === 'not http(s)') {
      throw new ConfigError(`webhooks.urls: ${JSON.stringify(text)} is not an http(s) URL`);
    }
    urls.push(url);
  }
  return urls;
}

/** Every key's dotted path (`limits.maxConnections`). */
function keyPaths(): string[] {
  return Object.entries(schema).flatMap(([group, keys]) => Object.keys(keys).map((key) => `${group}.${key}`));
}

function flatten(v: unknown, prefix: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ConfigError(`config ${prefix || 'root'} must be an object`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (typeof val === 'object' && val !== null && !Array.isArray(val))
      Object.assign(out, flatten(val, path));
    else out[path] = val;
  }
  return out;
}

/** Every key with its environment name, default and doc: for `mpush config --help` and the README. */
export function describeConfig(): Array<{
  key: string;
  env: string;
  type: string;
  default: unknown;
  doc: string;
}> {
  const rows = [];
  for (const [group, keys] of Object.entries(schema)) {
    for (const [key, spec] of Object.entries(keys as Record<string, KeySpec>)) {
      rows.push({
        key: `${group}.${key}`,
        env: envName(group, key),
        type: spec.type,
        default: spec.default,
        doc: spec.doc,
      });
    }
  }
  return rows;
}
