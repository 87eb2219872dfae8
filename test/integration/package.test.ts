import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** dist/test/integration → the repository root. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface PackageJson {
  name: string;
  exports: Record<string, string | { types: string; default: string }>;
  bin: Record<string, string>;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;

describe('the package', () => {
  it('exports the push SDK, the device SDK, the browser device client and the cluster stores, with declarations', () => {
    const entries = Object.fromEntries(
      Object.entries(pkg.exports).filter((e): e is [string, { types: string; default: string }] => {
        return typeof e[1] === 'object';
      }),
    );
    assert.deepEqual(Object.keys(entries).sort(), ['./cluster', './device', './device/browser', './push']);
    for (const [name, target] of Object.entries(entries)) {
      assert.ok(existsSync(join(ROOT, target.default)), `${name}: ${target.default} is built`);
      assert.ok(existsSync(join(ROOT, target.types)), `${name}: ${target.types} is built`);
    }
  });

  it('entry points load by name and export what the README names', async () => {
    // A package may import itself by name: this resolves through `exports`, as an installed copy would.
    const script = `
      const push = await import('${pkg.name}/push');
      const device = await import('${pkg.name}/device');
      const browser = await import('${pkg.name}/device/browser');
      const cluster = await import('${pkg.name}/cluster');
      console.log(JSON.stringify({
        push: [typeof push.PushSender, typeof push.StoreRouteSource],
        cluster: typeof cluster.RedisRouteStore,
        device: [typeof device.DeviceClient, typeof device.WsDeviceClient, typeof device.DeviceProtocol],
        browser: [typeof browser.WsDeviceClient, typeof browser.Disconnect, 'DeviceClient' in browser],
      }));
      try { await import('${pkg.name}/dist/src/node.js'); console.log('deep'); } catch (e) { console.log(e.code); }
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
    const [summary, deep] = stdout.trim().split('\n');
    assert.deepEqual(JSON.parse(summary!), {
      push: ['function', 'function'],
      cluster: 'function',
      device: ['function', 'function', 'function'],
      browser: ['function', 'object', false],
    });
    assert.equal(deep, 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'nothing but the entry points is importable');
  });

  it('packs every file the exports and the bin point at (npm pack --dry-run)', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      maxBuffer: 16 * 1024 * 1024,
    });
    const [report] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
    const packed = new Set(report!.files.map((f) => f.path));
    const targets = [
      ...Object.values(pkg.exports).flatMap((t) => (typeof t === 'string' ? [t] : [t.types, t.default])),
      ...Object.values(pkg.bin),
    ].map((t) => t.replace(/^\.\//, ''));
    for (const target of targets) assert.ok(packed.has(target), `${target} is in the package`);
    // Every module an entry point imports is in the package too.
    for (const entry of ['dist/src/client/device/index.js', 'dist/src/client/push/index.js']) {
      for (const file of importGraph(join(ROOT, entry))) {
        assert.ok(packed.has(file.slice(ROOT.length)), `${file} (imported by ${entry}) is in the package`);
      }
    }
    // The admin console's page, which the node serves from the package (src/api/console.ts).
    for (const f of ['web/index.html', 'web/console.js', 'web/console.css'])
      assert.ok(packed.has(f), `${f} is in the package`);
    assert.ok(![...packed].some((f) => f.startsWith('dist/test/')), 'no tests in the package');
  });
});

/** The files `entry` loads through relative imports, itself included. */
function importGraph(entry: string): Set<string> {
  const files = new Set<string>();
  const visit = (path: string): void => {
    if (files.has(path)) return;
    files.add(path);
    const code = readFileSync(path, 'utf8');
    for (const m of code.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s*['"](\.[^'"]+)['"]/gm)) {
      visit(fileURLToPath(new URL(m[1]!, `file://${path}`)));
    }
  };
  visit(entry);
  return files;
}
