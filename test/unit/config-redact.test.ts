import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSecretKey, loadConfig, REDACTED, redactedConfig, redactValue } from '../../src/config/index.js';

describe('config redaction (what an operator view may show)', () => {
  it('hides every credential key of the schema, by name, and no other key', () => {
    const config = loadConfig();
    const secrets = Object.entries(redactedConfig(config)).flatMap(([g, keys]) =>
      Object.keys(keys)
        .map((k) => `${g}.${k}`)
        .filter(isSecretKey),
    );
    for (const key of [
      'gateway.secret',
      'api.secret',
      'webhooks.secret',
      'auth.bindSecret',
      'security.privateKey',
      'cluster.zookeeperDigest',
    ]) {
      assert.ok(secrets.includes(key), `${key} is redacted`);
    }
    for (const key of ['security.publicKey', 'server.port', 'admin.host'])
      assert.ok(!secrets.includes(key), key);
  });

  it('a set secret reads as <redacted>, an unset one as empty; URL credentials are cut, lists too', () => {
    assert.equal(redactValue('gateway.secret', 's3cret'), REDACTED);
    assert.equal(redactValue('gateway.secret', ''), '');
    assert.equal(
      redactValue('cluster.redis', 'redis://:pw@10.0.0.1:6379'),
      `redis://${REDACTED}@10.0.0.1:6379`,
    );
    assert.equal(
      redactValue('webhooks.urls', 'https://u:p@a.example/h,https://b.example/h'),
      `https://${REDACTED}@a.example/h,https://b.example/h`,
    );
    // A password holding `@` or `/`: everything up to the item's last `@` goes.
    assert.equal(redactValue('cluster.redis', 'redis://:p@ss@h:6379'), `redis://${REDACTED}@h:6379`);
    assert.equal(redactValue('cluster.redis', 'redis://:a/b@h:6379'), `redis://${REDACTED}@h:6379`);
    assert.equal(
      redactValue('webhooks.urls', 'https://u:p@x@a.example/h,https://v:q/r@b.example/h'),
      `https://${REDACTED}@a.example/h,https://${REDACTED}@b.example/h`,
    );
    assert.equal(redactValue('server.port', 3000), 3000);
    const shown = JSON.stringify(
      redactedConfig(
        loadConfig({
          overrides: { gateway: { secret: 'gw-xyz' }, cluster: { redis: 'redis://:pw-xyz@h:1' } },
        }),
      ),
    );
    assert.ok(!shown.includes('gw-xyz') && !shown.includes('pw-xyz'));
  });
});
