import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ConfigError,
  type ConfigSources,
  describeConfig,
  type KeySpec,
  loadConfig,
  parseProxyUpstreams,
  parseWebhookUrls,
  schema,
} from '../../src/config/index.js';

const specs = schema as unknown as Record<string, Record<string, KeySpec>>;

/** Every key of the schema as `group.key`. */
const allKeys = Object.entries(specs).flatMap(([g, keys]) => Object.keys(keys).map((k) => `${g}.${k}`));

function valueAt(config: unknown, path: string): unknown {
  const [group, key] = path.split('.') as [string, string];
  return (config as Record<string, Record<string, unknown>>)[group]![key];
}

/** Asserts `loadConfig(sources)` throws a ConfigError whose message contains every `needle`. */
function assertConfigError(sources: ConfigSources, ...needles: string[]): void {
  assert.throws(
    () => loadConfig(sources),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
      assert.equal(err.name, 'ConfigError');
      for (const n of needles) assert.ok(err.message.includes(n), `"${err.message}" names ${n}`);
      return true;
    },
  );
}

describe('configuration', () => {
  let dir: string;
  const file = (name: string, content: unknown): string => {
    const p = join(dir, name);
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
    return p;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mpush-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('defaults', () => {
    it('gives every key its schema default, and MPush’s values for the protocol limits', () => {
      const c = loadConfig();
      for (const path of allKeys) {
        const [g, k] = path.split('.') as [string, string];
        assert.equal(valueAt(c, path), specs[g]![k]!.default, path);
      }
      assert.equal(c.server.port, 3000);
      assert.equal(c.heartbeat.minMs, 180_000);
      assert.equal(c.heartbeat.maxMs, 180_000);
      assert.equal(c.heartbeat.maxTimeouts, 2);
      assert.equal(c.limits.maxPacketSize, 10 * 1024);
      assert.equal(c.compress.thresholdBytes, 10 * 1024);
      assert.equal(c.session.expireMs, 86_400_000);
      assert.equal(c.auth.bindSecret, '');
    });

    it('has exactly the schema’s groups and keys', () => {
      const c = loadConfig() as unknown as Record<string, Record<string, unknown>>;
      const keys = Object.entries(c).flatMap(([g, v]) => Object.keys(v).map((k) => `${g}.${k}`));
      assert.deepEqual(keys.sort(), [...allKeys].sort());
    });

    it('returns a fresh object each time', () => {
      const a = loadConfig();
      a.server.port = 1;
      assert.equal(loadConfig().server.port, 3000);
    });

    it('does not read process.env unless it is passed', () => {
      const saved = process.env.MPUSH_SERVER_PORT;
      process.env.MPUSH_SERVER_PORT = '4444';
      try {
        assert.equal(loadConfig().server.port, 3000);
        assert.equal(loadConfig({ env: process.env }).server.port, 4444);
      } finally {
        if (saved === undefined) delete process.env.MPUSH_SERVER_PORT;
        else process.env.MPUSH_SERVER_PORT = saved;
      }
    });
  });

  describe('precedence: defaults < file < environment < flags < overrides', () => {
    const key = 'limits.maxConnections';
    const env = 'MPUSH_LIMITS_MAX_CONNECTIONS';

    it('lets each layer override the ones below it', () => {
      const f = file('layers.json', { limits: { maxConnections: 10 } });
      const max = (s: ConfigSources) => loadConfig(s).limits.maxConnections;
      assert.equal(max({}), 100_000);
      assert.equal(max({ file: f }), 10);
      assert.equal(max({ file: f, env: { [env]: '20' } }), 20);
      assert.equal(max({ file: f, env: { [env]: '20' }, flags: { [key]: '30' } }), 30);
      assert.equal(
        max({
          file: f,
          env: { [env]: '20' },
          flags: { [key]: '30' },
          overrides: { limits: { maxConnections: 40 } },
        }),
        40,
      );
      // Skipping a layer falls through to the next one down.
      assert.equal(max({ file: f, flags: { [key]: '30' } }), 30);
      assert.equal(max({ file: f, env: {} }), 10);
      assert.equal(max({ env: { [env]: '20' }, overrides: { limits: {} } }), 20);
    });

    it('overrides only the keys a layer names', () => {
      const f = file('partial.json', { server: { port: 4000 }, log: { level: 'warn' } });
      const c = loadConfig({
        file: f,
        env: { MPUSH_SERVER_HOST: '10.0.0.1' },
        flags: { 'http.port': '9090' },
        overrides: { heartbeat: { graceMs: 5 } },
      });
      assert.equal(c.server.port, 4000);
      assert.equal(c.server.host, '10.0.0.1');
      assert.equal(c.http.port, 9090);
      assert.equal(c.heartbeat.graceMs, 5);
      assert.equal(c.log.level, 'warn');
      assert.equal(c.http.host, '0.0.0.0');
      assert.equal(c.limits.maxConnections, 100_000);
    });

    it('coerces strings from the environment and flags to the key’s type', () => {
      const c = loadConfig({
        env: { MPUSH_HTTP_WS_ENABLED: 'false', MPUSH_NODE_DATA_DIR: '/var/lib/mpush' },
        flags: { 'heartbeat.tickMs': '250', 'compress.thresholdBytes': '0' },
      });
      assert.equal(c.http.wsEnabled, false);
      assert.equal(c.node.dataDir, '/var/lib/mpush');
      assert.equal(c.heartbeat.tickMs, 250);
      assert.equal(c.compress.thresholdBytes, 0);
      for (const [raw, want] of [
        ['true', true],
        ['1', true],
        ['false', false],
        ['0', false],
      ] as const) {
        assert.equal(loadConfig({ flags: { 'http.wsEnabled': raw } }).http.wsEnabled, want, raw);
      }
      assert.equal(loadConfig({ flags: { 'http.wsEnabled': true } }).http.wsEnabled, true, 'a bare --flag');
    });

    it('ignores environment variables that name no key (other programs’ MPUSH_*)', () => {
      const c = loadConfig({ env: { MPUSH_HOME: '/x', MPUSH_NOPE: '1', PATH: '/bin' } });
      assert.equal(c.server.port, 3000);
    });
  });

  describe('errors', () => {
    it('names an unknown key, wherever it comes from', () => {
      assertConfigError({ flags: { 'limits.maxConections': '5' } }, 'limits.maxConections', 'flags');
      assertConfigError({ flags: { bogus: '1' } }, '"bogus"');
      assertConfigError({ flags: { 'nogroup.port': '1' } }, 'nogroup.port');
      assertConfigError({ flags: { 'server.port.extra': '1' } }, 'server.port.extra');
      assertConfigError({ file: file('typo.json', { server: { prot: 1 } }) }, 'server.prot', 'typo.json');
      assertConfigError({ file: file('typo-group.json', { sever: { port: 1 } }) }, 'sever.port');
      assertConfigError({ overrides: { server: { nope: 1 } } as never }, 'server.nope', 'overrides');
    });

    it('names the key probably meant, when one is near enough', () => {
      assertConfigError({ flags: { 'limits.maxConections': '5' } }, 'did you mean "limits.maxConnections"?');
      assertConfigError({ file: file('near.json', { server: { prot: 1 } }) }, 'did you mean "server.port"?');
      assertConfigError({ flags: { 'limits.maxconnections': '5' } }, 'did you mean "limits.maxConnections"?');
      assert.throws(
        () => loadConfig({ flags: { 'zz.qq': '1' } }),
        (err: Error) => !err.message.includes('did you mean'),
        'no guess for a key near nothing',
      );
    });

    it('refuses a value that is not an integer', () => {
      for (const raw of ['abc', '1.5', '', ' ', 'NaN', 'Infinity', '12abc']) {
        assertConfigError({ flags: { 'server.port': raw } }, 'server.port', 'integer');
      }
      assertConfigError({ flags: { 'server.port': true } }, 'server.port', 'integer');
      assertConfigError(
        { file: file('float.json', { limits: { maxConnections: 2.5 } }) },
        'limits.maxConnections',
      );
      assertConfigError(
        { file: file('strint.json', { limits: { maxConnections: [1] } }) },
        'limits.maxConnections',
      );
      assertConfigError({ env: { MPUSH_LIMITS_MAX_CONNECTIONS: 'lots' } }, 'limits.maxConnections');
    });

    it('refuses an integer out of its range, naming the bound', () => {
      assertConfigError({ flags: { 'server.port': '65536' } }, 'server.port', '65535');
      assertConfigError({ flags: { 'server.port': '-1' } }, 'server.port', '0');
      assertConfigError({ flags: { 'limits.maxConnections': '0' } }, 'limits.maxConnections', '1');
      assertConfigError({ flags: { 'heartbeat.tickMs': '60001' } }, 'heartbeat.tickMs');
      assertConfigError({ flags: { 'limits.maxPacketSize': '63' } }, 'limits.maxPacketSize', '64');
      assert.equal(loadConfig({ flags: { 'server.port': '65535' } }).server.port, 65535);
      assert.equal(loadConfig({ flags: { 'server.port': '0' } }).server.port, 0);
    });

    it('refuses a boolean that is not true/false/1/0', () => {
      for (const raw of ['yes', 'no', 'TRUE', '', 'on']) {
        assertConfigError({ flags: { 'http.wsEnabled': raw } }, 'http.wsEnabled', 'true or false');
      }
      assertConfigError({ file: file('bool.json', { http: { wsEnabled: 1 } }) }, 'http.wsEnabled');
    });

    it('refuses a non-string for a string key', () => {
      assertConfigError(
        { file: file('str.json', { auth: { bindSecret: 42 } }) },
        'auth.bindSecret',
        'string',
      );
      assertConfigError({ flags: { 'auth.bindSecret': true } }, 'auth.bindSecret', 'string');
    });

    it('refuses heartbeat.minMs above heartbeat.maxMs, after all layers are applied', () => {
      assertConfigError({ flags: { 'heartbeat.minMs': '200000' } }, 'heartbeat.minMs', 'heartbeat.maxMs');
      assertConfigError(
        { flags: { 'heartbeat.minMs': '10000' }, overrides: { heartbeat: { maxMs: 5000 } } },
        'heartbeat.minMs',
      );
      // A file lowering max and the environment lowering min together are fine.
      const c = loadConfig({
        file: file('hb.json', { heartbeat: { maxMs: 60_000 } }),
        env: { MPUSH_HEARTBEAT_MIN_MS: '60000' },
      });
      assert.deepEqual([c.heartbeat.minMs, c.heartbeat.maxMs], [60_000, 60_000]);
    });

    it('refuses a config file that is missing, not JSON, or not an object', () => {
      assertConfigError({ file: join(dir, 'missing.json') }, 'missing.json');
      assertConfigError({ file: file('bad.json', '{"server": ') }, 'bad.json');
      assertConfigError({ file: file('array.json', [1, 2]) }, 'must be an object');
    });
  });

  describe('describeConfig', () => {
    const rows = describeConfig();

    it('lists every key once, with its type, default and doc', () => {
      assert.deepEqual(
        rows.map((r) => r.key),
        allKeys,
      );
      for (const r of rows) {
        const [g, k] = r.key.split('.') as [string, string];
        const spec = specs[g]![k]!;
        assert.equal(r.type, spec.type, r.key);
        assert.equal(r.default, spec.default, r.key);
        assert.ok(r.doc.length > 0, `${r.key} is documented`);
      }
    });

    it('gives each key its environment name', () => {
      const env = new Map(rows.map((r) => [r.key, r.env]));
      assert.equal(env.get('limits.maxConnections'), 'MPUSH_LIMITS_MAX_CONNECTIONS');
      assert.equal(env.get('node.dataDir'), 'MPUSH_NODE_DATA_DIR');
      assert.equal(env.get('server.port'), 'MPUSH_SERVER_PORT');
      assert.equal(env.get('http.wsPath'), 'MPUSH_HTTP_WS_PATH');
      assert.equal(new Set(rows.map((r) => r.env)).size, rows.length, 'environment names are unique');
      for (const r of rows) assert.match(r.env, /^MPUSH_[A-Z][A-Z0-9_]*$/, r.key);
    });

    it('names environment variables that loadConfig actually reads, for every key', () => {
      for (const r of rows) {
        const [g, k] = r.key.split('.') as [string, string];
        const spec = specs[g]![k]!;
        let value: string;
        let want: unknown;
        if (spec.type === 'int') {
          const n =
            (spec.default as number) + 1 <= (spec.max ?? Number.MAX_SAFE_INTEGER)
              ? (spec.default as number) + 1
              : (spec.default as number) - 1;
          value = String(n);
          want = n;
        } else if (spec.type === 'bool') {
          want = !spec.default;
          value = String(want);
        } else if (spec.enum) {
          value = spec.enum.find((v) => v !== spec.default)!;
          want = value;
        } else {
          value =
            r.key === 'webhooks.urls'
              ? 'http://127.0.0.1:9/hook'
              : r.key === 'httpProxy.upstreams'
                ? 'other=http://127.0.0.1:9'
                : `value-of-${r.key}`;
          want = value;
        }
        // Keeps heartbeat.minMs ≤ heartbeat.maxMs whichever of the two is being set; webhooks.urls needs a
        // secret, httpProxy.enabled an upstream.
        const env: Record<string, string> = {
          MPUSH_HEARTBEAT_MAX_MS: '999999999',
          MPUSH_WEBHOOKS_SECRET: 's',
          MPUSH_HTTP_PROXY_UPSTREAMS: 'api=http://127.0.0.1:9',
          [r.env]: value,
        };
        assert.equal(valueAt(loadConfig({ env }), r.key), want, r.key);
      }
    });
  });
});

describe('string choices', () => {
  it('refuse a value outside the choices, naming them', () => {
    assert.throws(
      () => loadConfig({ flags: { 'push.tagMatch': 'fuzzy' } }),
      /push\.tagMatch must be one of mpush, exact/,
    );
    assert.equal(loadConfig({ flags: { 'push.tagMatch': 'exact' } }).push.tagMatch, 'exact');
  });
});

describe('webhooks config', () => {
  it('webhooks.urls: a comma-separated list of http(s) URLs, blanks ignored', () => {
    const c = loadConfig({
      flags: {
        'webhooks.urls': ' http://a.example/h , ,https://b.example:8443/x?k=1',
        'webhooks.secret': 's',
      },
    });
    assert.deepEqual(
      parseWebhookUrls(c.webhooks.urls).map((u) => u.href),
      ['http://a.example/h', 'https://b.example:8443/x?k=1'],
    );
    assert.deepEqual(parseWebhookUrls(loadConfig({}).webhooks.urls), [], 'empty by default: off');
  });

  it('a URL that does not parse, or is not http(s), is a ConfigError naming it', () => {
    assertConfigError(
      { flags: { 'webhooks.urls': 'http://ok.example/h,not a url', 'webhooks.secret': 's' } },
      'webhooks.urls',
      '"not a url"',
    );
    assertConfigError(
      { flags: { 'webhooks.urls': 'ftp://files.example/', 'webhooks.secret': 's' } },
      '"ftp://files.example/"',
      'http(s)',
    );
  });

  it('webhooks.urls without webhooks.secret is refused (receivers could not check the signature)', () => {
    assertConfigError({ flags: { 'webhooks.urls': 'http://a.example/h' } }, 'webhooks.secret');
  });

  it('webhooks.retryMinMs must not exceed webhooks.retryMaxMs', () => {
    assertConfigError(
      { flags: { 'webhooks.retryMinMs': '2000', 'webhooks.retryMaxMs': '1000' } },
      'webhooks.retryMinMs',
    );
  });
});

describe('httpProxy config', () => {
  it('httpProxy.upstreams: name=baseUrl entries, names in lower case, blanks ignored', () => {
    const c = loadConfig({
      flags: { 'httpProxy.upstreams': ' API=http://127.0.0.1:9000 , ,pay.internal=https://pay.example/v1/' },
    });
    assert.deepEqual(
      [...parseProxyUpstreams(c.httpProxy.upstreams)].map(([name, url]) => [name, url.href]),
      [
        ['api', 'http://127.0.0.1:9000/'],
        ['pay.internal', 'https://pay.example/v1/'],
      ],
    );
    assert.equal(loadConfig().httpProxy.enabled, false, 'off by default');
  });

  it('refuses an entry that is not name=http(s) base URL, naming it', () => {
    const bad: Array<[string, string]> = [
      ['api', 'not name=baseUrl'],
      ['a b=http://x', 'not a host name'],
      ['-api=http://x', 'not a host name'],
      ['api=http://x,API=http://y', 'second time'],
      ['api=nope', 'not a URL'],
      ['api=ftp://x', 'not http(s)'],
      ['api=http://u:p@x', 'credentials'],
      ['api=http://x/?q=1', 'query or fragment'],
      ['api=http://x/#f', 'query or fragment'],
    ];
    for (const [spec, why] of bad) {
      assertConfigError({ flags: { 'httpProxy.upstreams': spec } }, 'httpProxy.upstreams', why);
    }
  });

  it('httpProxy.enabled needs an upstream', () => {
    assertConfigError({ flags: { 'httpProxy.enabled': 'true' } }, 'httpProxy.upstreams');
  });

  it('httpProxy.maxResponseBytes must leave room under limits.maxOutboundBytes (one packet), when enabled', () => {
    const flags = {
      'httpProxy.enabled': 'true',
      'httpProxy.upstreams': 'api=http://127.0.0.1:9',
      'httpProxy.maxResponseBytes': String(5 * 1024 * 1024),
    };
    assertConfigError({ flags }, 'httpProxy.maxResponseBytes', 'limits.maxOutboundBytes');
    const ok = loadConfig({ flags: { ...flags, 'limits.maxOutboundBytes': String(6 * 1024 * 1024) } });
    assert.equal(ok.httpProxy.maxResponseBytes, 5 * 1024 * 1024);
    assert.equal(
      loadConfig({ flags: { 'httpProxy.maxResponseBytes': String(5 * 1024 * 1024) } }).httpProxy.enabled,
      false,
    );
  });
});
