import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLogger, silentLogger } from '../../src/log.js';

const run = promisify(execFile);

function capture(level: string) {
  const lines: string[] = [];
  const log = createLogger(level, 'mpush', (l) => lines.push(l));
  const entries = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, entries };
}

describe('log', () => {
  it('writes one JSON line per event: level by name, ISO time, name, message and fields', () => {
    const { log, lines, entries } = capture('info');
    log.warn('route register failed', { userId: 'u1', err: 'timeout' });
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.endsWith('\n'));
    const [e] = entries();
    assert.equal(e!.level, 'warn');
    assert.equal(e!.name, 'mpush');
    assert.equal(e!.msg, 'route register failed');
    assert.equal(e!.userId, 'u1');
    assert.equal(e!.err, 'timeout');
    assert.match(String(e!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('drops what is below log.level; an unknown level is info', () => {
    const { log, entries } = capture('warn');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    assert.deepEqual(
      entries().map((e) => e.level),
      ['warn', 'error'],
    );
    assert.equal(log.enabled('debug'), false);
    assert.equal(log.enabled('error'), true);
    const fallback = capture('loud');
    assert.equal(fallback.log.enabled('info'), true);
    assert.equal(fallback.log.enabled('debug'), false);
  });

  it('a child carries its bindings (the component) on every line, and keeps the level', () => {
    const { log, entries } = capture('debug');
    const server = log.child({ component: 'server' });
    server.debug('bound', { conn: 7, userId: 'u1' });
    server.child({ conn: 8 }).info('x');
    log.info('root');
    const [a, b, c] = entries();
    assert.deepEqual([a!.component, a!.conn, a!.userId, a!.msg], ['server', 7, 'u1', 'bound']);
    assert.deepEqual([b!.component, b!.conn], ['server', 8]);
    assert.equal(c!.component, undefined);
    assert.equal(server.enabled('debug'), true);
  });

  it('silentLogger and its children write nothing', () => {
    assert.equal(silentLogger.child({ component: 'x' }), silentLogger);
    assert.equal(silentLogger.enabled('error'), false);
    silentLogger.error('nothing');
  });

  it('writes to stderr synchronously: a line logged just before process.exit is out', async () => {
    const logModule = fileURLToPath(new URL('../../src/log.js', import.meta.url));
    const script = `import(${JSON.stringify(logModule)}).then(({ createLogger }) => {
      createLogger('info').error('last words', { reason: 'exit' });
      process.exit(0);
    });`;
    const { stdout, stderr } = await run(process.execPath, ['-e', script]);
    assert.equal(stdout, '');
    const e = JSON.parse(stderr.trim()) as Record<string, unknown>;
    assert.deepEqual([e.level, e.msg, e.reason], ['error', 'last words', 'exit']);
  });
});
