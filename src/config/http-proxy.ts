import { ConfigError } from './config-error.js';
import type { Config } from './schema.js';

/** A host name (or IPv4 literal) as a device's URL names it: dot-separated labels of letters, digits and `-`. */
const HOST_NAME = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

/**
 * Room a proxied response needs beyond its body in the one packet that carries it: the response
 * headers (Node reads at most 16 KiB of them), the body's framing, AES padding, zlib overhead.
 */
export const HTTP_PROXY_PACKET_SLACK = 64 * 1024;

/** `text` as an http(s) URL, or why it is not one (`not a URL`, `not http(s)`): for the URL lists of the config. */
export function httpUrl(text: string): URL | 'not a URL' | 'not http(s)' {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a URL';
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url : 'not http(s)';
}

/**
 * `httpProxy.upstreams` (`name=baseUrl,name=baseUrl`) as a map from lower-case host name to base
 * URL. Strict: every entry needs a host name, an `=`, and an http(s) base URL with no credentials,
 * query or fragment; a name may appear once. Anything else is a ConfigError naming the entry.
 */
export function parseProxyUpstreams(spec: string): Map<string, URL> {
  const upstreams = new Map<string, URL>();
  for (const raw of spec.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    const fail = (why: string): never => {
      throw new ConfigError(`httpProxy.upstreams: ${JSON.stringify(entry)} ${why}`);
    };
    if (eq < 0) fail('is not name=baseUrl');
    const name = entry.slice(0, eq).trim().toLowerCase();
    const target = entry.slice(eq + 1).trim();
    if (!HOST_NAME.test(name)) fail(`names ${JSON.stringify(name)}, which is not a host name`);
    if (upstreams.has(name)) fail(`names ${name} a second time`);
    const url = httpUrl(target);
    if (url === 'not a URL') return fail(`maps to ${JSON.stringify(target)}, which is not a URL`);
    if (url === 'not http(s)') return fail('maps to a URL that is not http(s)');
    if (url.username || url.password) fail('maps to a URL with credentials');
    if (url.search || url.hash || target.includes('?') || target.includes('#'))
      fail('maps to a URL with a query or fragment');
    upstreams.set(name, url);
  }
  return upstreams;
}

/**
 * The proxy settings' own checks, run by the loader: the upstream list parses and, when the proxy
 * is on, names at least one upstream, and a response of `maxResponseBytes` fits the device's
 * outbound bound (it is written as one packet; past the bound the device would be dropped).
 */
export function checkHttpProxyConfig(config: Config): void {
  const p = config.httpProxy;
  const upstreams = parseProxyUpstreams(p.upstreams);
  if (!p.enabled) return;
  if (upstreams.size === 0) {
    throw new ConfigError(
      'httpProxy.enabled needs httpProxy.upstreams (name=baseUrl,...): nothing else is called',
    );
  }
  const room = config.limits.maxOutboundBytes - HTTP_PROXY_PACKET_SLACK;
  if (p.maxResponseBytes > room) {
    throw new ConfigError(
      `httpProxy.maxResponseBytes (${p.maxResponseBytes}) must be at most limits.maxOutboundBytes - 64 KiB (${room}): a response travels in one packet; raise limits.maxOutboundBytes or lower httpProxy.maxResponseBytes`,
    );
  }
}
