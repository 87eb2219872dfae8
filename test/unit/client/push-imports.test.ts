import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** dist/src: the compiled tree the SDK entry points are imported from. */
const SRC = new URL('../../../src/', import.meta.url);

/**
 * A `load` hook that records every module URL the loader loads, and hands the list over when
 * asked through the port `module.register` passes it. Asking after the import has settled makes
 * the list complete: the hook thread answers in order, after every load it served.
 */
const HOOKS = `
const loaded = [];
export function initialize({ port }) {
  port.on('message', () => port.postMessage(loaded));
}
export async function load(url, context, next) {
  loaded.push(url);
  return next(url, context);
}
`;

/** The URLs of every module a fresh process loads to import `entry` (a URL). */
async function modulesLoadedBy(entry: URL): Promise<string[]> {
  const script = `
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
import { once } from 'node:events';
const { port1, port2 } = new MessageChannel();
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}), {
  data: { port: port2 },
  transferList: [port2],
});
await import(${JSON.stringify(entry.href)});
port1.postMessage('dump');
const [loaded] = await once(port1, 'message');
port1.close();
process.stdout.write(JSON.stringify(loaded));
`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(SRC),
  });
  return JSON.parse(stdout) as string[];
}

/** Layers a client SDK must not pull in (DESIGN.md: client/ sits on protocol/, crypto/, util/). */
const SERVER_SIDE = ['server/', 'push/', 'gateway/', 'cluster/', 'api/', 'cli/', 'node.js'];

function offenders(loaded: string[]): string[] {
  return loaded.filter((url) => {
    if (url.includes('/node_modules/jsep/')) return true;
    if (!url.startsWith(SRC.href)) return false;
    const rel = url.slice(SRC.href.length).split('?')[0]!;
    return SERVER_SIDE.some((p) => rel === p || rel.startsWith(p));
  });
}

describe('SDK entry points load no server code', () => {
  it('client/push/index.js (PushSender) loads nothing under server, push, gateway, cluster, api, node.js, nor jsep', async () => {
    const loaded = await modulesLoadedBy(new URL('client/push/index.js', SRC));
    // The hook saw the SDK itself: an empty list would make this test pass vacuously.
    assert.ok(
      loaded.some((u) => u.endsWith('/client/push/push-sender.js')),
      'the hook recorded the SDK',
    );
    assert.deepEqual(offenders(loaded), []);
  });

  it('client/device/index.js (DeviceClient, WsDeviceClient) loads no server code', async () => {
    const loaded = await modulesLoadedBy(new URL('client/device/index.js', SRC));
    assert.ok(
      loaded.some((u) => u.endsWith('/client/device/tcp-client.js')),
      'the hook recorded the SDK',
    );
    assert.deepEqual(offenders(loaded), []);
  });
});
