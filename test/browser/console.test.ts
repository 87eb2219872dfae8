import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/chromium.js';
import { closeAll, connectDevice, type TestDevice } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait.js';

// The admin web console in a real Chromium, against a real node with real devices connected: the
// page is the one the node serves at /admin/ (web/), its API calls are the node's API.

/** Hang guard for awaited conditions; never a timing assertion. */
const WAIT = 15_000;
const SECRET = 'browser-console-secret';

/** What the tests read of the page's globals (this project's tsconfig has no DOM lib). */
interface PageGlobals {
  sessionStorage: { getItem(key: string): string | null };
}

/** The text of `selector` once `ok` holds of it (polled in the page). */
async function textWhen(page: Page, selector: string, ok: (text: string) => boolean, what: string) {
  const end = Date.now() + WAIT;
  let text = '';
  for (;;) {
    text = (await page.locator(selector).textContent()) ?? '';
    if (ok(text)) return text;
    if (Date.now() > end) assert.fail(`${what}: ${selector} reads ${JSON.stringify(text)}`);
    await page.waitForTimeout(50);
  }
}

/** A page on /admin/ that records its script errors and failed requests. */
async function open(browser: Browser, node: TestNode): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  // Offline: anything but the node's own origin is refused, so a CDN dependency would fail here.
  await page.route(
    (url) => url.host !== `127.0.0.1:${node.httpPort}`,
    (route) => {
      errors.push(`off-origin request: ${route.request().url()}`);
      return route.abort();
    },
  );
  await page.goto(`http://127.0.0.1:${node.httpPort}/admin/`);
  return { page, errors };
}

describe('the admin console in Chromium', () => {
  let browser: Browser;
  let node: TestNode;
  let shots: string;
  const devices: TestDevice[] = [];

  before(async () => {
    browser = await launchChromium();
    node = await startTestNode({ api: { secret: SECRET }, cluster: { registryRefreshMs: 100 } });
    shots = mkdtempSync(join(tmpdir(), 'mpush-console-shots-'));
  });
  after(async () => {
    await browser?.close();
    await closeAll(devices);
    await node?.stop();
    rmSync(shots, { recursive: true, force: true });
  });

  it('signs in with the secret, sees the device, pushes, broadcasts to 100 % and cancels a slow broadcast', async () => {
    const alice = await connectDevice(node.tcpPort, 'alice', { tags: 'vip' });
    devices.push(alice);
    for (const u of ['bob', 'carol']) devices.push(await connectDevice(node.tcpPort, u, { tags: 'vip' }));
    const { page, errors } = await open(browser, node);

    // Sign-in: asked for the secret, a wrong one refused, the right one kept in the session only.
    await page.locator('#secret').waitFor({ state: 'visible', timeout: WAIT });
    assert.equal(await page.locator('#console').isVisible(), false);
    await page.fill('#secret', 'not-the-secret');
    await page.click('#sign-in-form button[type=submit]');
    await textWhen(page, '#sign-in-error', (t) => t.includes('refused'), 'a wrong secret is refused');
    await page.fill('#secret', SECRET);
    await page.click('#sign-in-form button[type=submit]');
    await page.locator('#console').waitFor({ state: 'visible', timeout: WAIT });
    assert.equal(
      await page.evaluate(() =>
        (globalThis as unknown as PageGlobals).sessionStorage.getItem('mpush-ts.console.secret'),
      ),
      SECRET,
    );
    assert.ok(!page.url().includes(SECRET), 'the secret is never in the URL');

    // Live nodes: this node with its three connections; no ack latency measured here.
    const nodes = await textWhen(page, '#nodes', (t) => t.includes(node.node.id), 'the node is listed');
    assert.ok(nodes.includes('(this node)'));
    const row = page.locator('#nodes tr').first();
    await textWhen(page, '#nodes tr:first-child td:nth-child(4)', (t) => t === '3', 'three connections');
    assert.equal(await row.locator('td:nth-child(5)').textContent(), '3', 'three online users');
    assert.equal(await page.locator('#ack-latency').textContent(), '—');

    // User lookup: alice's device, its node and since when.
    await page.fill('#lookup-user', 'alice');
    await page.click('#lookup-form button[type=submit]');
    await textWhen(page, '#lookup-status', (t) => t === 'alice: online', 'alice is online');
    const device = page.locator('#devices tr').first();
    assert.equal(await device.locator('td:nth-child(1)').textContent(), 'mobile');
    assert.equal(await device.locator('td:nth-child(3)').textContent(), 'android');
    assert.equal(await device.locator('td:nth-child(5)').textContent(), node.node.id);
    assert.match((await device.locator('td:nth-child(6)').textContent()) ?? '', /ago\)$/);
    assert.equal(await page.locator('#inbox').textContent(), 'nothing kept');

    // Push to alice: success, with its timeline, and the device got it.
    await page.fill('#push-user', 'alice');
    await page.fill('#push-content', 'hello from the console');
    await page.selectOption('#push-ack', 'AUTO_ACK');
    await page.click('#push-form button[type=submit]');
    await textWhen(page, '#push-status', (t) => t === 'success', 'the push succeeds');
    const result = page.locator('#push-results tr').first();
    assert.equal(await result.locator('td:nth-child(2)').textContent(), 'success');
    assert.match((await result.locator('td:nth-child(5)').textContent()) ?? '', /end \+\d+/);
    await waitFor(() => alice.pushes.length === 1, WAIT, 'the push reaches alice');
    assert.equal(alice.pushes[0]!.content.toString(), 'hello from the console');

    // Broadcast to the vip tag, acked: the bar reaches 100 % and the task is done.
    await page.selectOption('#bc-target', 'tags');
    await page.fill('#bc-tags', 'vip');
    await page.fill('#bc-rate', '0');
    await page.selectOption('#bc-ack', 'AUTO_ACK');
    await page.fill('#bc-content', 'to every vip');
    await page.click('#broadcast-form button[type=submit]');
    await textWhen(page, '#bc-progress', (t) => t === '100 %', 'the bar reaches 100 %');
    assert.equal(await page.locator('#bc-bar').getAttribute('aria-valuenow'), '100');
    await textWhen(page, '#bc-status', (t) => t === 'done', 'the broadcast is done');
    assert.equal(await page.locator('#bc-matched').textContent(), '3');
    assert.equal(await page.locator('#bc-acked').textContent(), '3');
    assert.equal(await page.locator('#bc-failed').textContent(), '0');
    await waitFor(
      () => devices.every((d) => d.pushes.some((p) => p.content.toString() === 'to every vip')),
      WAIT,
      'every vip device gets the broadcast',
    );
    await page.screenshot({ path: join(shots, 'console-broadcast.png'), fullPage: true });

    // A slow broadcast (1 device a second to ten devices), cancelled from the page.
    for (let i = 0; i < 10; i++)
      devices.push(await connectDevice(node.tcpPort, `slow-${i}`, { tags: 'slow' }));
    await page.fill('#bc-tags', 'slow');
    await page.fill('#bc-rate', '1');
    await page.fill('#bc-content', 'slowly');
    const previous = await page.locator('#bc-task').textContent();
    await page.click('#broadcast-form button[type=submit]');
    const taskId = await textWhen(
      page,
      '#bc-task',
      (t) => t.startsWith('bc-') && t !== previous,
      'the new task id is shown',
    );
    await textWhen(page, '#bc-matched', (t) => Number(t) >= 1, 'the slow broadcast starts');
    assert.equal(await page.locator('#bc-status').textContent(), 'running');
    await page.click('#bc-cancel');
    await textWhen(page, '#bc-status', (t) => t === 'cancelled', 'the broadcast is cancelled');
    assert.equal(node.node.push.task(taskId)?.status, 'cancelled');
    assert.ok(Number(await page.locator('#bc-matched').textContent()) < 10, 'stopped before the end');
    assert.equal(await page.locator('#bc-cancel').isDisabled(), true);

    // A device leaves: its disconnect shows, with its reason.
    await alice.client.close();
    await textWhen(
      page,
      '#disconnects',
      (t) => t.includes('remote-closed') && t.includes('alice'),
      'the disconnect',
    );
    await page.screenshot({ path: join(shots, 'console.png'), fullPage: true });
    assert.ok(statSync(join(shots, 'console.png')).size > 0);

    // Signing out forgets the secret.
    await page.click('#sign-out');
    await page.locator('#sign-in').waitFor({ state: 'visible', timeout: WAIT });
    assert.equal(
      await page.evaluate(() =>
        (globalThis as unknown as PageGlobals).sessionStorage.getItem('mpush-ts.console.secret'),
      ),
      null,
    );
    assert.deepEqual(errors, []);
    await page.close();
  });
});

describe('the admin console with no API secret (loopback only)', () => {
  let browser: Browser;
  let node: TestNode;
  before(async () => {
    browser = await launchChromium();
    node = await startTestNode();
  });
  after(async () => {
    await browser?.close();
    await node?.stop();
  });

  it('opens without a sign-in, as the API does, and says why', async () => {
    assert.equal(node.node.http.apiSecret, null, 'the API needs no secret here');
    const { page, errors } = await open(browser, node);
    await page.locator('#console').waitFor({ state: 'visible', timeout: WAIT });
    assert.equal(await page.locator('#open-note').isVisible(), true);
    assert.equal(await page.locator('#sign-in').isVisible(), false);
    assert.equal(await page.locator('#sign-out').isVisible(), false);
    await textWhen(page, '#nodes', (t) => t.includes(node.node.id), 'the node is listed');
    assert.deepEqual(errors, []);
    await page.close();
  });
});
