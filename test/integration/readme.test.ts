import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ClientType } from '../../src/protocol/index.js';
import { freePort } from '../helpers/free-port.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

// The README's SDK examples, compiled against the package's own entry points (`mpush-ts/device`,
// `mpush-ts/push`: a package may import itself by name through its `exports`) and run against a real
// node, so an edit that breaks one fails here. Examples are written for a node on the default ports;
// the test points 3000, 3001 and 8080 at its node's ports and changes nothing else.

const run = promisify(execFile);
/** dist/test/integration → the repository root (where package.json and README.md are). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Hang guard; never a timing assertion. */
const WAIT = 15_000;

/** The ```ts blocks of the README section headed `### <title>`, in order. */
function examples(readme: string, title: string): string[] {
  const start = readme.indexOf(`\n### ${title}\n`);
  assert.ok(start >= 0, `README has a "### ${title}" section`);
  const rest = readme.slice(start + title.length + 6);
  const end = rest.search(/\n##+ /);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

interface Example {
  name: string;
  source: string;
}

interface Running {
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

function start(file: string): Running {
  return startNode(['--enable-source-maps', file]);
}

function startNode(args: string[]): Running {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const r: Running = {
    proc,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => proc.once('exit', (code) => resolve(code))),
  };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    r.stdout += d;
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    r.stderr += d;
  });
  return r;
}

describe('the README examples', () => {
  let t: TestNode;
  const dir = join(ROOT, 'dist', `readme-examples-${process.pid}`);
  const running: Running[] = [];
  let compiled: string[] = [];
  let devices: Example[] = [];
  let business: Example[] = [];
  let proxy: Example[] = [];
  let upstream: Running | undefined;

  before(async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    // The HTTP proxy section's upstream (its `node -e` line) and flags, on a free port for 9000.
    const proxyText = readme.slice(readme.indexOf('\n### HTTP proxy through the long connection\n'));
    const upstreamCode = /node -e "(.+)" &/.exec(proxyText)?.[1];
    const upstreamsFlag = /--httpProxy\.upstreams=(\S+)/.exec(proxyText)?.[1];
    assert.ok(upstreamCode && upstreamsFlag, 'the HTTP proxy section starts an upstream and names it');
    const upstreamPort = String(await freePort());
    upstream = startNode(['-e', upstreamCode.replace('9000', upstreamPort)]);
    running.push(upstream);
    const deadline = Date.now() + WAIT;
    while (
      !(await fetch(`http://127.0.0.1:${upstreamPort}/`).then(
        () => true,
        () => false,
      ))
    ) {
      assert.ok(Date.now() < deadline, `the README upstream listens: ${upstream.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    t = await startTestNode({
      httpProxy: { enabled: true, upstreams: upstreamsFlag.replace('9000', upstreamPort) },
    });
    const ports: Record<string, number> = {
      '3000': t.tcpPort,
      '3001': t.node.addresses.gatewayPort,
      '8080': t.httpPort,
    };
    const localize = (code: string): string => code.replace(/\b(3000|3001|8080)\b/g, (p) => String(ports[p]));
    devices = examples(readme, 'Devices').map((c, i) => ({ name: `devices-${i + 1}`, source: localize(c) }));
    business = examples(readme, 'Business servers').map((c, i) => ({
      name: `business-${i + 1}`,
      source: localize(c),
    }));
    proxy = examples(readme, 'HTTP proxy through the long connection').map((c, i) => ({
      name: `proxy-${i + 1}`,
      source: localize(c),
    }));
    assert.ok(devices.length >= 2, 'a TCP and a WebSocket device example');
    assert.ok(business.length >= 1, 'a PushSender example');
    assert.equal(proxy.length, 1, 'an HTTP proxy example');
    mkdirSync(dir, { recursive: true });
    for (const e of [...devices, ...business, ...proxy]) writeFileSync(join(dir, `${e.name}.ts`), e.source);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2022', 'DOM'],
          types: ['node'],
          strict: true,
          skipLibCheck: true,
          sourceMap: true,
          rootDir: '.',
          outDir: 'out',
        },
        include: ['*.ts'],
      }),
    );
    compiled = [...devices, ...business, ...proxy].map((e) => join(dir, 'out', `${e.name}.js`));
  });

  after(async () => {
    for (const r of running) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
    await Promise.all(running.map((r) => r.exited));
    rmSync(dir, { recursive: true, force: true });
    await t.stop();
  });

  it('compile against the package exports with strict TypeScript', async () => {
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')]).catch(
      (err: { stdout?: string; stderr?: string }) => {
        assert.fail(`the README examples do not compile:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
      },
    );
    assert.equal(r.stderr, '');
  });

  it('run: the devices bind and print the pushes the business server sends them', async () => {
    const deviceRuns = devices.map((_e, i) => {
      const r = start(compiled[i]!);
      running.push(r);
      return r;
    });
    const router = t.node.connections.router;
    await waitFor(
      () =>
        router.get('u1', ClientType.MOBILE) !== undefined && router.get('u1', ClientType.WEB) !== undefined,
      WAIT,
      `both README devices bound as u1 (stderr: ${deviceRuns.map((r) => r.stderr).join(' | ')})`,
    );
    const sender = start(compiled[devices.length]!);
    running.push(sender);
    const code = await sender.exited;
    assert.equal(code, 0, `the PushSender example exits cleanly: ${sender.stderr}`);
    // One result per (user, device type): the phone (1) and the web page (3), both delivered.
    for (const type of [ClientType.MOBILE, ClientType.WEB]) {
      assert.match(sender.stdout, new RegExp(`clientType: ${type},\\s+result: 'success'`), sender.stdout);
    }
    assert.doesNotMatch(sender.stdout, /result: '(failure|offline|timeout)'/, sender.stdout);
    for (const r of deviceRuns) {
      await waitFor(
        () => r.stdout.split('\n').includes('hi'),
        WAIT,
        `a device printed the push: ${r.stderr}`,
      );
    }
  });

  it('run: the HTTP proxy example prints what its comment says, from the README upstream', async () => {
    const want = /console\.log\(res\.status.*\/\/ (.+)$/m.exec(proxy[0]!.source)?.[1];
    assert.ok(want, 'the example says what it prints');
    const r = start(compiled[devices.length + business.length]!);
    running.push(r);
    const code = await r.exited;
    assert.equal(
      code,
      0,
      `the HTTP proxy example exits cleanly: ${r.stderr} (upstream: ${upstream?.stderr})`,
    );
    assert.equal(r.stdout.trim(), want);
  });
});
