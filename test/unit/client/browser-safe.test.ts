import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// The compiled device SDK, beside this compiled test (dist/test/unit/client → dist/src/client/device).
const deviceDir = new URL('../../../src/client/device/', import.meta.url);

/** Every module `entry` loads, following the compiled import and export statements. */
function importGraph(entry: URL): { files: Set<string>; outside: string[] } {
  const files = new Set<string>();
  const outside: string[] = [];
  const visit = (url: URL): void => {
    const path = fileURLToPath(url);
    if (files.has(path)) return;
    files.add(path);
    const code = readFileSync(path, 'utf8');
    const specifiers = [
      ...code.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s*['"]([^'"]+)['"]/gm),
      ...code.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
      ...code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
    ].map((m) => m[1]!);
    for (const s of specifiers) {
      if (s.startsWith('./') || s.startsWith('../')) visit(new URL(s, url));
      else outside.push(`${path}: ${s}`);
    }
  };
  visit(entry);
  return { files, outside };
}

describe('the WebSocket device client stays browser-safe', () => {
  it('imports, directly or not, no Node built-in and no package', () => {
    // browser.js is the package's `mpush-ts/device/browser` entry.
    assert.deepEqual(importGraph(new URL('browser.js', deviceDir)).outside, []);
    const { files, outside } = importGraph(new URL('ws-client.js', deviceDir));
    assert.deepEqual(outside, []);
    const names = [...files].map((f) => f.slice(f.lastIndexOf('/') + 1));
    // It runs on the shared state machine, not beside it; the binary wire (Node crypto) stays out.
    assert.ok(
      ['device-protocol.js', 'device-session.js', 'json-wire.js'].every((n) => names.includes(n)),
      names.join(', '),
    );
    assert.ok(!names.includes('binary-wire.js'));
  });

  it('handshakes, binds and acks a push in a runtime with no Buffer and no process', () => {
    const script = `
      delete globalThis.Buffer;
      delete globalThis.process;
      const { WsDeviceClient } = await import(${JSON.stringify(new URL('ws-client.js', deviceDir).href)});
      class FakeSocket {
        static last;
        readyState = 0;
        sent = [];
        onopen = null; onmessage = null; onclose = null; onerror = null;
        constructor() {
          FakeSocket.last = this;
          setTimeout(() => { this.readyState = 1; this.onopen({}); }, 0);
        }
        send(text) { this.sent.push(JSON.parse(text)); }
        close() { this.readyState = 3; setTimeout(() => this.onclose({ code: 1000 }), 0); }
        reply(cmd, sessionId, body, flags = 16) { this.onmessage({ data: JSON.stringify({ cmd, flags, sessionId, body }) }); }
      }
      const client = new WsDeviceClient({ url: 'ws://device.test/', deviceId: 'page-1', userId: 'u1', WebSocket: FakeSocket, autoReconnect: false });
      const seen = [];
      client.on('bind', (b) => seen.push(['bind', b.userId]));
      client.on('push', (p) => seen.push(['push', p.content, p.ackModel]));
      const ready = client.connect();
      await new Promise((r) => setTimeout(r, 5));
      const ws = FakeSocket.last;
      ws.reply(2, ws.sent[0].sessionId, { sessionId: 's-1', heartbeat: 180000, expireTime: 1 });
      await ready;
      ws.reply(11, ws.sent[1].sessionId, { cmd: 5, code: 0, data: '' });
      ws.reply(15, 7, { content: 'hi' }, 16 | 8);
      await client.close();
      console.log(JSON.stringify({ sent: ws.sent.map((f) => [f.cmd, f.sessionId]), seen, buffer: typeof Buffer }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      sent: [
        [2, 1],
        [5, 2],
        [23, 7],
      ],
      seen: [
        ['bind', 'u1'],
        ['push', 'hi', 'auto'],
      ],
      buffer: 'undefined',
    });
  });
});
