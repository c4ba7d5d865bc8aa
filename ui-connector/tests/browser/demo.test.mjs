// Browser test of the demo page: drives it in headless Chromium the way a person would.
//
// Why it exists: the page is the local playground's front door and the only client of the
// recovery extension in this repository; this checks it really works end to end against a
// running `ui-connector --local` (register, Socket.IO connect, join, events posted through the
// real push endpoints, disconnect -> missed events -> reconnect with `since`) and leaves a
// screenshot for a human to look at. Run by ui-connector/tests/demo_browser.rs, or by hand:
//
//   node demo.test.mjs http://localhost:8080/ /tmp/demo-page.png
//
// Uses the system Chromium (Debian's /usr/bin/chromium, or CHROMIUM_PATH); playwright-core
// never downloads a browser.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [url, screenshotPath] = process.argv.slice(2);
if (!url || !screenshotPath) {
  console.error('usage: node demo.test.mjs <page url> <screenshot path>');
  process.exit(2);
}

const EXECUTABLE = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 15_000;
const OVERALL_TIMEOUT_MS = 120_000;
const KINDS = [
  'human-agent-assistant-event',
  'conversation-lifecycle-event',
  'new-message-event',
  'new-recognition-result-notification-event',
  'virtual-agent-event',
];

const overall = setTimeout(() => {
  console.error(`FAIL: the browser test did not finish within ${OVERALL_TIMEOUT_MS} ms`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function step(message) {
  console.log(`- ${message}`);
}

const userDataDir = mkdtempSync(path.join(tmpdir(), 'demo-browser-test-'));
const browserLog = [];
let context;
let page;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: EXECUTABLE,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--no-sandbox', // Chromium refuses to run as root otherwise
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') browserLog.push(`console.${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (error) => browserLog.push(`page error: ${error.message}`));

  /** Waits until #id leaves the given transient states, then requires `wanted` (fails fast with
   * the page's own explanation otherwise). */
  const settle = async (id, wanted, transient) => {
    await page.waitForSelector(`#${id}${transient.map((s) => `:not([data-state="${s}"])`).join('')}`);
    const element = page.locator(`#${id}`);
    const got = await element.getAttribute('data-state');
    check(got === wanted, `#${id} is "${got}", not "${wanted}": ${await element.textContent()}`);
  };
  const events = page.locator('#events > li');
  const eventOf = (kind, replayed) =>
    page.locator(`#events > li[data-event-type="${kind}"][data-replayed="${replayed}"]`);
  const okPosts = page.locator('#post-log > li[data-state="ok"]');

  step(`open ${url}`);
  await page.goto(url);

  step('register');
  await page.fill('#user-name', 'browser-test-agent');
  await page.click('#register');
  await settle('token-status', 'ok', ['none', 'pending']);

  step('connect');
  await page.click('#connect');
  await settle('connection-state', 'connected', ['disconnected', 'connecting']);

  // A conversation of its own, so nothing from an earlier run is replayed as history.
  const conversationId = `browser-test-${Date.now()}`;
  const conversation = `projects/demo-project/locations/global/conversations/${conversationId}`;
  const withoutLocation = `projects/demo-project/conversations/${conversationId}`;
  step(`join ${conversation}`);
  await page.fill('#conversation-name', conversation);
  await page.click('#join');
  await settle('join-status', 'joined', ['none', 'pending']);
  check((await page.textContent('#join-status')).includes(withoutLocation),
    'the join acknowledgement names the conversation without its location');

  step('post one sample of each kind; each arrives live');
  for (const [index, kind] of KINDS.entries()) {
    await page.click(`#post-${kind}`);
    await eventOf(kind, 'live').waitFor();
    check((await events.count()) === index + 1, `one event per post (after ${kind})`);
  }
  check((await okPosts.count()) === KINDS.length, 'every post answered 2xx');
  const suggestions = eventOf('human-agent-assistant-event', 'live');
  const payload = JSON.parse(await suggestions.locator('[data-testid="event-data"]').textContent());
  check(payload.conversation === conversation, 'the posted payload names the joined conversation');
  check(Array.isArray(payload.suggestionResults) && payload.suggestionResults.length === 3,
    'the suggestions payload is shown parsed and pretty-printed');
  check((await suggestions.textContent()).includes(withoutLocation), 'the event shows its conversation');
  check((await eventOf('new-recognition-result-notification-event', 'live').textContent()).includes('END_USER'),
    'the recognition event shows its participant role');
  const virtualAgent = await eventOf('virtual-agent-event', 'live').textContent();
  check(virtualAgent.includes('billing.dispute_charge') && virtualAgent.includes('charged twice for the November bill'),
    `the virtual agent event shows the intent and the collected parameters: ${virtualAgent}`);

  step('disconnect, post two events while away');
  await page.click('#disconnect');
  await page.waitForSelector('#connection-state[data-state="disconnected"]');
  await page.click('#post-new-message-event');
  await page.click('#post-human-agent-assistant-event');
  await page.waitForFunction((count) => document.querySelectorAll('#post-log > li[data-state="ok"]').length === count,
    KINDS.length + 2);
  check((await events.count()) === KINDS.length, 'nothing arrives while disconnected');

  step('reconnect: the missed events are replayed, marked recovered');
  await page.click('#connect');
  await settle('connection-state', 'connected', ['disconnected', 'connecting']);
  await page.waitForSelector('#recovery-status[data-state="rejoined"][data-recovered="true"]');
  for (const kind of ['new-message-event', 'human-agent-assistant-event']) {
    await eventOf(kind, 'recovered').locator('[data-testid="recovered-badge"]').waitFor();
  }
  await page.waitForFunction((count) => document.querySelectorAll('#events > li').length === count, KINDS.length + 2);
  check((await page.locator('#events > li[data-recovered="true"]').count()) === 2,
    'exactly the two missed events are marked recovered');

  step('a live event after the recovery is not marked');
  await page.click('#post-conversation-lifecycle-event');
  await page.waitForFunction((count) => document.querySelectorAll('#events > li').length === count, KINDS.length + 3);
  const newest = events.first();
  check((await newest.getAttribute('data-event-type')) === 'conversation-lifecycle-event'
    && (await newest.getAttribute('data-replayed')) === 'live', 'the newest event is listed first, live');
  const offsets = (await events.evaluateAll((items) => items.map((li) => Number(li.dataset.offset))));
  check(offsets.every((offset, i) => i === 0 || offset < offsets[i - 1]),
    `events are listed newest first by offset: ${offsets}`);

  // The recovered events are the most interesting: put them in view for the screenshot.
  await page.locator('#events > li[data-recovered="true"]').first().scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshotPath, fullPage: true });
  console.log(`screenshot: ${screenshotPath}`);
  check(browserLog.filter((line) => line.startsWith('page error')).length === 0,
    `no script errors on the page:\n${browserLog.join('\n')}`);
  console.log('demo page browser test passed');
} catch (error) {
  process.exitCode = 1;
  console.error(`FAIL: ${error.message}`);
  if (browserLog.length) console.error(`browser log:\n${browserLog.join('\n')}`);
  if (page) {
    try {
      // What the page itself said: usually the reason (a refused registration, a failed join).
      for (const id of ['token-status', 'connection-state', 'join-status', 'recovery-status', 'post-log']) {
        const text = await page.locator(`#${id}`).textContent({ timeout: 1000 });
        console.error(`#${id}: ${(text || '').replace(/\s+/g, ' ').trim()}`);
      }
    } catch (_) {
      // The page never loaded; the error above says why.
    }
    try {
      await page.screenshot({ path: screenshotPath, fullPage: true });
      console.error(`screenshot (at failure): ${screenshotPath}`);
    } catch (_) {
      // The page itself is gone; the error above says why.
    }
  }
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(overall);
}
