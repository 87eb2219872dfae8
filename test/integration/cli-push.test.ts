import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ClientType } from '../../src/protocol/index.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { freePort as closedPort } from '../helpers/free-port.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { type Run, runToEnd } from '../helpers/run.js';
import { waitFor } from '../helpers/wait.js';

/** The compiled CLI, beside this compiled test: dist/test/integration → dist/src/cli. */
const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** Hang guard only (a stuck child is killed and the test fails); never a timing assertion. */
const GUARD = 20_000;

// biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON output is checked field by field
type Json = any;

/** The parent's environment without MPUSH_* variables, so a developer's shell cannot change a test. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MPUSH_')) env[k] = v;
  return { ...env, ...extra };
}

/** Runs `mpush <args>` to its end. */
function mpush(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runToEnd(process.execPath, [cliPath, ...args], { env: cleanEnv(env), guardMs: GUARD });
}

function parse(run: Run): Json {
  try {
    return JSON.parse(run.stdout);
  } catch {
    assert.fail(`stdout is not JSON (exit ${run.code}):\n${run.stdout}\nstderr:\n${run.stderr}`);
  }
}

describe('mpush push / broadcast (CLI) against a node', () => {
  let t: TestNode;
  let gateway: string;
  const devices: TestDevice[] = [];
  let u1: TestDevice;

  before(async () => {
    t = await startTestNode();
    gateway = `127.0.0.1:${t.node.addresses.gatewayPort}`;
    u1 = await connectDevice(t.tcpPort, 'u1', { tags: 'vip' });
    devices.push(u1);
    devices.push(await connectDevice(t.tcpPort, 'u2', { tags: 'vip,beta' }));
    devices.push(await connectDevice(t.tcpPort, 'u3', { tags: 'beta' }));
    devices.push(await connectDevice(t.tcpPort, 'u4'));
  });
  after(async () => {
    await closeAll(devices);
    await t.stop();
  });

  it('push to a bound user: a JSON array with one success result, exit 0', async () => {
    const run = await mpush([
      'push',
      '--gateway',
      gateway,
      '--user',
      'u1',
      '--content',
      'hi',
      '--ack',
      'auto',
      '--timeout',
      '2000',
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    const results = parse(run);
    assert.ok(Array.isArray(results));
    assert.equal(results.length, 1);
    const [r] = results;
    assert.equal(r.userId, 'u1');
    assert.equal(r.clientType, ClientType.MOBILE);
    assert.equal(r.result, 'success');
    assert.equal(r.code, 1);
    assert.equal(r.gateway, gateway);
    assert.equal(typeof r.timeline.begin, 'number');
    assert.equal(typeof r.timeline.end, 'number');
    assert.ok(r.timePoints.acked, 'AUTO_ACK: the device acked');
    await waitFor(() => u1.pushes.some((p) => p.content.toString() === 'hi'), 3000, 'the push');
    assert.equal(u1.pushes.find((p) => p.content.toString() === 'hi')!.ackModel, 'auto');
  });

  it('push with the default ack model (none) and no timeout: success', async () => {
    const run = await mpush(['push', '--gateway', gateway, '--user', 'u2', '--content', 'plain']);
    assert.equal(run.code, 0, run.stderr);
    const [r] = parse(run);
    assert.equal(r.result, 'success');
    assert.equal(r.timePoints.acked, undefined);
  });

  it('push to an offline user: an offline result and exit code 3, said on stderr too', async () => {
    const run = await mpush(['push', '--gateway', gateway, '--user', 'nobody', '--content', 'hi']);
    assert.equal(run.code, 3, run.stderr);
    const results = parse(run);
    assert.equal(results.length, 1);
    assert.equal(results[0].userId, 'nobody');
    assert.equal(results[0].result, 'offline');
    assert.equal(results[0].code, 3);
    assert.match(run.stderr, /nobody: offline/);
  });

  it('push to several users, one offline: one result each, exit code 3', async () => {
    const run = await mpush(['push', '--gateway', gateway, '--user', 'u1,nobody,u3', '--content', 'many']);
    assert.equal(run.code, 3, run.stderr);
    assert.deepEqual(
      parse(run).map((r: Json) => [r.userId, r.result]),
      [
        ['u1', 'success'],
        ['nobody', 'offline'],
        ['u3', 'success'],
      ],
    );
    assert.match(run.stderr, /nobody: offline/);
    assert.doesNotMatch(run.stderr, /u1|u3/);
  });

  it('push --store --msg-id to an offline user: offline, stored, exit 0; the device gets it when it binds', async () => {
    const run = await mpush([
      'push',
      '--gateway',
      gateway,
      '--user',
      'cli-later',
      '--content',
      'kept',
      '--store',
      '--ttl',
      '600',
      '--msg-id',
      'cli-m1',
      '--ack',
      'auto',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const [r] = parse(run);
    assert.deepEqual([r.result, r.messageId, r.stored], ['offline', 'cli-m1', true]);
    assert.match(run.stderr, /cli-later: offline .*stored for later/);
    const d = await connectDevice(t.tcpPort, 'cli-later');
    devices.push(d);
    await waitFor(() => d.pushes.length === 1, 3000, 'the stored push');
    assert.equal(d.pushes[0]!.content.toString(), 'kept');
    assert.equal(d.pushes[0]!.ackModel, 'auto');
    const receipt = await t.node.inbox.receipt('cli-m1');
    assert.equal(receipt?.users[0]?.userId, 'cli-later');
  });

  it('push --store --ttl 1: the stored message expires before the device binds', async () => {
    const run = await mpush([
      'push',
      '--gateway',
      gateway,
      '--user',
      'cli-ttl',
      '--content',
      'stale',
      '--store',
      '--ttl',
      '1',
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(parse(run)[0].stored, true);
    await new Promise((res) => setTimeout(res, 1100));
    const before = t.node.inbox.stats.expired;
    const d = await connectDevice(t.tcpPort, 'cli-ttl');
    devices.push(d);
    await waitFor(() => t.node.inbox.stats.expired > before, 3000, 'the expiry');
    assert.equal(d.pushes.length, 0);
  });

  it('push without --store: every result names its messageId, stored false', async () => {
    const run = await mpush(['push', '--gateway', gateway, '--user', 'u3', '--content', 'ids']);
    assert.equal(run.code, 0, run.stderr);
    const [r] = parse(run);
    assert.match(r.messageId, /^[0-9a-f-]{36}$/);
    assert.equal(r.stored, false);
  });

  it('bad inbox flags: --ttl without --store, an empty --msg-id, --store on broadcast', async () => {
    const base = ['--gateway', gateway, '--content', 'x'];
    const ttl = await mpush(['push', ...base, '--user', 'u1', '--ttl', '5']);
    assert.notEqual(ttl.code, 0);
    assert.match(ttl.stderr, /--ttl needs --store/);
    const zero = await mpush(['push', ...base, '--user', 'u1', '--store', '--ttl', '0']);
    assert.match(zero.stderr, /--ttl must be a positive integer/);
    const id = await mpush(['push', ...base, '--user', 'u1', '--msg-id', '']);
    assert.match(id.stderr, /--msg-id must be 1 to 128 characters/);
    const bc = await mpush(['broadcast', ...base, '--store']);
    assert.notEqual(bc.code, 0);
    assert.match(bc.stderr, /--store/);
  });

  it('broadcast --tags vip: the counts as JSON, exit 0', async () => {
    const run = await mpush(['broadcast', '--gateway', gateway, '--content', 'hi-vip', '--tags', 'vip']);
    assert.equal(run.code, 0, run.stderr);
    const b = parse(run);
    assert.equal(b.result, 'success');
    assert.equal(typeof b.taskId, 'string');
    assert.equal(b.matched, 2);
    assert.equal(b.sent, 2);
    assert.equal(b.failed, 0);
    assert.equal(b.nodes.length, 1);
    assert.equal(b.nodes[0].gateway, gateway);
    assert.equal(b.nodes[0].status, 'done');
    await waitFor(
      () => devices.filter((d) => d.pushes.some((p) => p.content.toString() === 'hi-vip')).length === 2,
      3000,
      'the vip devices',
    );
  });

  it('broadcast to everyone, and by --condition', async () => {
    const all = await mpush(['broadcast', '--gateway', gateway, '--content', 'hi-all']);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(parse(all).matched, devices.length);
    assert.equal(parse(all).sent, devices.length);
    const cond = await mpush([
      'broadcast',
      '--gateway',
      gateway,
      '--content',
      'hi-beta',
      '--condition',
      "tags&&tags.indexOf('beta')!=-1",
    ]);
    assert.equal(cond.code, 0, cond.stderr);
    assert.equal(parse(cond).matched, 2);
  });

  it('broadcast with a forbidden condition: failure, exit 3, the reason on stderr', async () => {
    const run = await mpush([
      'broadcast',
      '--gateway',
      gateway,
      '--content',
      'x',
      '--condition',
      'constructor',
    ]);
    assert.equal(run.code, 3, run.stdout);
    assert.equal(parse(run).result, 'failure');
    assert.match(run.stderr, /constructor/);
  });

  it('push without --content: a clear message, non-zero exit, nothing sent', async () => {
    const run = await mpush(['push', '--gateway', gateway, '--user', 'u1']);
    assert.notEqual(run.code, 0);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /push needs --content/);
    const bare = await mpush(['push', '--gateway', gateway, '--user', 'u1', '--content']);
    assert.notEqual(bare.code, 0);
    assert.match(bare.stderr, /push needs --content/);
    const bc = await mpush(['broadcast', '--gateway', gateway]);
    assert.notEqual(bc.code, 0);
    assert.match(bc.stderr, /broadcast needs --content/);
  });

  it('broadcast --tag (a typo for --tags): non-zero exit naming --tag, and no device gets it', async () => {
    // Regression: unknown flags were ignored, so this broadcast went to every device.
    const run = await mpush(['broadcast', '--gateway', gateway, '--tag', 'vip', '--content', 'typo-tag']);
    assert.notEqual(run.code, 0);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /unknown flag --tag\b/);
    assert.match(run.stderr, /did you mean --tags\?/);
    const bare = await mpush(['broadcast', '--gateway', gateway, '--content', 'typo-bare', '--tags']);
    assert.notEqual(bare.code, 0);
    assert.match(bare.stderr, /broadcast needs --tags <value>/);
    // A broadcast sent after them reaches every device: had either been sent, it would be there first.
    const marker = await mpush(['broadcast', '--gateway', gateway, '--content', 'after-typo']);
    assert.equal(marker.code, 0, marker.stderr);
    await waitFor(
      () => devices.every((d) => d.pushes.some((p) => p.content.toString() === 'after-typo')),
      3000,
      'the marker broadcast',
    );
    const got = devices.filter((d) => d.pushes.some((p) => p.content.toString().startsWith('typo-')));
    assert.equal(got.length, 0, 'no device received the mistyped broadcasts');
  });

  it('push without --user says so before trying to reach a gateway', async () => {
    // Regression: --user was checked only after connecting, so with no gateway up the message
    // was a connection error instead.
    const port = await closedPort();
    const run = await mpush(['push', '--gateway', `127.0.0.1:${port}`, '--content', 'hi']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /push needs --user/);
    assert.doesNotMatch(run.stderr, /ECONNREFUSED/);
  });

  it('bad --ack or --timeout: a clear message, non-zero exit', async () => {
    const ack = await mpush([
      'push',
      '--gateway',
      gateway,
      '--user',
      'u1',
      '--content',
      'x',
      '--ack',
      'maybe',
    ]);
    assert.notEqual(ack.code, 0);
    assert.match(ack.stderr, /--ack must be none, auto or biz/);
    // A name every object has (Object.prototype's) is not an ack model either.
    for (const model of ['constructor', 'toString']) {
      const run = await mpush([
        'push',
        '--gateway',
        gateway,
        '--user',
        'u1',
        '--content',
        'x',
        '--ack',
        model,
      ]);
      assert.notEqual(run.code, 0, model);
      assert.match(run.stderr, /--ack must be none, auto or biz/, model);
    }
    for (const timeout of ['soon', '-5', '1.5']) {
      const run = await mpush([
        'push',
        '--gateway',
        gateway,
        '--user',
        'u1',
        '--content',
        'x',
        '--timeout',
        timeout,
      ]);
      assert.notEqual(run.code, 0, timeout);
      assert.match(run.stderr, /--timeout must be a positive integer/, timeout);
    }
  });

  it('no gateway listening: non-zero exit naming the address', async () => {
    const port = await closedPort();
    const run = await mpush(['push', '--gateway', `127.0.0.1:${port}`, '--user', 'u1', '--content', 'x']);
    assert.notEqual(run.code, 0);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
  });
});

describe('mpush push / broadcast (CLI) against a node with gateway.secret', () => {
  let t: TestNode;
  let gateway: string;
  const devices: TestDevice[] = [];

  before(async () => {
    t = await startTestNode({ gateway: { secret: 'gs' } });
    gateway = `127.0.0.1:${t.node.addresses.gatewayPort}`;
    devices.push(await connectDevice(t.tcpPort, 'u1', { tags: 'vip' }));
  });
  after(async () => {
    await closeAll(devices);
    await t.stop();
  });

  it('push without --secret fails: non-zero exit, the reason on stderr, nothing delivered', async () => {
    const run = await mpush(['push', '--gateway', gateway, '--user', 'u1', '--content', 'no-secret']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /secret/);
    assert.notEqual(parse(run)[0].result, 'success');
    assert.equal(devices[0]!.pushes.length, 0);
    assert.ok(t.node.gateway.stats.authFailures > 0);
  });

  it('broadcast without --secret fails: non-zero exit, the reason on stderr', async () => {
    const run = await mpush(['broadcast', '--gateway', gateway, '--content', 'no-secret', '--tags', 'vip']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /secret/);
    assert.equal(parse(run).result, 'failure');
    assert.equal(devices[0]!.pushes.length, 0);
  });

  it('a wrong --secret is refused: non-zero exit, the reason on stderr', async () => {
    const run = await mpush([
      'push',
      '--gateway',
      gateway,
      '--user',
      'u1',
      '--content',
      'x',
      '--secret',
      'nope',
    ]);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /refused auth/);
    assert.equal(devices[0]!.pushes.length, 0);
  });

  it('with --secret gs, push and broadcast succeed', async () => {
    const push = await mpush([
      'push',
      '--gateway',
      gateway,
      '--user',
      'u1',
      '--content',
      'with-secret',
      '--secret',
      'gs',
      '--ack',
      'auto',
    ]);
    assert.equal(push.code, 0, push.stderr);
    assert.equal(parse(push)[0].result, 'success');
    const bc = await mpush([
      'broadcast',
      '--gateway',
      gateway,
      '--content',
      'bc-with-secret',
      '--tags',
      'vip',
      '--secret',
      'gs',
    ]);
    assert.equal(bc.code, 0, bc.stderr);
    assert.equal(parse(bc).matched, 1);
    assert.equal(parse(bc).sent, 1);
    await waitFor(() => devices[0]!.pushes.length === 2, 3000, 'both pushes');
  });

  it('the secret can come from MPUSH_GATEWAY_SECRET', async () => {
    const run = await mpush(['push', '--gateway', gateway, '--user', 'u1', '--content', 'env-secret'], {
      MPUSH_GATEWAY_SECRET: 'gs',
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(parse(run)[0].result, 'success');
  });
});
