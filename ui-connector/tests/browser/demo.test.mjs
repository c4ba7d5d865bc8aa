// Browser test of the test page: drives it in headless Chromium the way a person would.
//
// Why it exists: the page is the local playground's front door, the page operators open on a
// deployed connector, and the only client of the recovery extension in this repository; this
// checks it really works end to end and leaves a screenshot for a human to look at. Two modes:
//
//   node demo.test.mjs <page url> <screenshot path>
//     against `ui-connector --local`: register (any token), Socket.IO connect, join, events
//     posted by the page through the real push endpoints and the CX webhook, disconnect ->
//     missed events -> reconnect with `since`;
//   node demo.test.mjs <page url> <screenshot path> production <interceptor url> <platform token>
//     against a production connector (AUTH_OPTION checks the platform token): the page asks
//     for the token and is refused without the right one, offers nothing to post, and receives
//     the events this script pushes to the interceptor, recovery included; then a page on
//     another origin connects with socket.io-client's `withCredentials: true`, which needs the
//     connector's CORS answer to echo the origin and allow credentials (as the Python one did).
//
// Run by ui-connector/tests/demo_browser.rs. Uses the system Chromium (Debian's
// /usr/bin/chromium, or CHROMIUM_PATH); playwright-core never downloads a browser.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [url, screenshotPath, mode = 'local', interceptorUrl, platformToken] = process.argv.slice(2);
if (!url || !screenshotPath || !['local', 'production'].includes(mode)
  || (mode === 'production' && (!interceptorUrl || !platformToken))) {
  console.error('usage: node demo.test.mjs <page url> <screenshot path> '
    + '[production <interceptor url> <platform token>]');
  process.exit(2);
}
const production = mode === 'production';

const EXECUTABLE = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 15_000;
const OVERALL_TIMEOUT_MS = 120_000;
const KINDS = [
  'human-agent-assistant-event',
  'conversation-lifecycle-event',
  'new-message-event',
  'new-recognition-result-notification-event',
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
  // The page's content security policy must not refuse anything the page itself does.
  const refusedByPolicy = () => browserLog.filter((line) => line.includes('Content Security Policy'));
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

  /** Pushes a sample event of `kind` to the interceptor, as Pub/Sub would (production mode). */
  let pushed = 0;
  const pushEvent = async (kind, conversation) => {
    pushed += 1;
    const data = JSON.stringify({ conversation, n: pushed, type: 'CONVERSATION_STARTED' });
    const attributes = kind === 'new-recognition-result-notification-event'
      ? { participant_role: 'END_USER', message_id: `m-${pushed}` } : {};
    const response = await fetch(`${interceptorUrl}/${kind}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        message: {
          data: Buffer.from(data).toString('base64'),
          messageId: `browser-${Date.now()}-${pushed}`,
          publishTime: new Date().toISOString(),
          attributes,
        },
        subscription: 'projects/demo-project/subscriptions/browser-test',
      }),
    });
    check(response.status === 204, `the interceptor accepted the ${kind} push (${response.status})`);
  };
  /** Posts (local: the page's buttons; production: to the interceptor) one event of `kind`. */
  const post = async (kind, conversation) => {
    if (production) await pushEvent(kind, conversation);
    else await page.click(`#post-${kind}`);
  };

  step(`open ${url} (${mode} mode)`);
  await page.goto(url);
  check((await page.getAttribute('body', 'data-mode')) === mode, `the page is marked ${mode}`);

  if (production) {
    step('production: the page asks for a platform token and offers nothing to post');
    check(await page.isVisible('#platform-token'), 'the platform token field is shown');
    check((await page.inputValue('#platform-token')) === '', 'no token is filled in');
    check(!(await page.isVisible('#post-new-message-event')), 'no sample buttons');
    step('register with a wrong platform token: refused');
    await page.fill('#platform-token', 'Bearer not-the-right-token');
    await page.click('#register');
    await settle('token-status', 'error', ['none', 'pending']);
    check((await page.textContent('#token-status')).includes('401'), 'the refusal says 401');
    await page.fill('#platform-token', platformToken);
  } else {
    check((await page.inputValue('#platform-token')) !== '', 'local mode fills a token in');
  }

  step('register');
  await page.fill('#user-name', 'browser-test-agent');
  await page.click('#register');
  await settle('token-status', 'ok', ['none', 'pending', 'error']);
  const jwt = await page.getAttribute('#token-status', 'title');

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

  step('post one event of each kind; each arrives live');
  for (const [index, kind] of KINDS.entries()) {
    await post(kind, conversation);
    await eventOf(kind, 'live').waitFor();
    check((await events.count()) === index + 1, `one event per post (after ${kind})`);
  }
  // Local mode also posts the virtual agent's context through the CX webhook it serves.
  let posted = KINDS.length;
  if (!production) {
    step('post the virtual agent context through the CX webhook; it arrives live');
    await page.click('#post-virtual-agent-event');
    await eventOf('virtual-agent-event', 'live').waitFor();
    posted += 1;
    const virtualAgent = await eventOf('virtual-agent-event', 'live').textContent();
    check(virtualAgent.includes('billing.dispute_charge') && virtualAgent.includes('charged twice for the November bill'),
      `the virtual agent event shows the intent and the collected parameters: ${virtualAgent}`);
    check((await okPosts.count()) === posted, 'every post answered 2xx');
    const suggestions = eventOf('human-agent-assistant-event', 'live');
    const payload = JSON.parse(await suggestions.locator('[data-testid="event-data"]').textContent());
    check(payload.conversation === conversation, 'the posted payload names the joined conversation');
    check(Array.isArray(payload.suggestionResults) && payload.suggestionResults.length === 3,
      'the suggestions payload is shown parsed and pretty-printed');
    check((await suggestions.textContent()).includes(withoutLocation), 'the event shows its conversation');
  }
  check((await eventOf('new-recognition-result-notification-event', 'live').textContent()).includes('END_USER'),
    'the recognition event shows its participant role');

  step('disconnect, post two events while away');
  await page.click('#disconnect');
  await page.waitForSelector('#connection-state[data-state="disconnected"]');
  await post('new-message-event', conversation);
  await post('human-agent-assistant-event', conversation);
  if (!production) {
    await page.waitForFunction((count) => document.querySelectorAll('#post-log > li[data-state="ok"]').length === count,
      posted + 2);
  }
  check((await events.count()) === posted, 'nothing arrives while disconnected');

  step('reconnect: the missed events are replayed, marked recovered');
  await page.click('#connect');
  await settle('connection-state', 'connected', ['disconnected', 'connecting']);
  await page.waitForSelector('#recovery-status[data-state="rejoined"][data-recovered="true"]');
  for (const kind of ['new-message-event', 'human-agent-assistant-event']) {
    await eventOf(kind, 'recovered').locator('[data-testid="recovered-badge"]').waitFor();
  }
  await page.waitForFunction((count) => document.querySelectorAll('#events > li').length === count, posted + 2);
  check((await page.locator('#events > li[data-recovered="true"]').count()) === 2,
    'exactly the two missed events are marked recovered');

  step('a live event after the recovery is not marked');
  await post('conversation-lifecycle-event', conversation);
  await page.waitForFunction((count) => document.querySelectorAll('#events > li').length === count, posted + 3);
  const newest = events.first();
  check((await newest.getAttribute('data-event-type')) === 'conversation-lifecycle-event'
    && (await newest.getAttribute('data-replayed')) === 'live', 'the newest event is listed first, live');
  const offsets = (await events.evaluateAll((items) => items.map((li) => Number(li.dataset.offset))));
  check(offsets.every((offset, i) => i === 0 || offset < offsets[i - 1]),
    `events are listed newest first by offset: ${offsets}`);
  check(refusedByPolicy().length === 0, `the content security policy refused nothing:\n${refusedByPolicy().join('\n')}`);

  if (production) {
    // `127.0.0.1` and `localhost` are two origins: a desktop page on one connecting to the
    // connector on the other with `withCredentials: true` needs the origin echoed and
    // `Access-Control-Allow-Credentials: true` (python-engineio's answer), or the browser
    // refuses the polling responses.
    const connector = new URL(url);
    const otherOrigin = `${connector.protocol}//localhost:${connector.port}`;
    step(`a desktop on ${otherOrigin} connects with withCredentials: true`);
    const desktop = await context.newPage();
    desktop.setDefaultTimeout(STEP_TIMEOUT_MS);
    await desktop.goto(`${otherOrigin}/status`);
    await desktop.addScriptTag({ url: `${otherOrigin}/demo/socket.io.min.js` });
    const outcome = await desktop.evaluate(([target, token]) => new Promise((resolve) => {
      // eslint-disable-next-line no-undef
      const socket = io(target, {
        withCredentials: true, transports: ['polling'], reconnection: false, auth: { token },
      });
      const timer = setTimeout(() => resolve('no answer in 10 s'), 10000);
      socket.on('connect', () => { clearTimeout(timer); socket.close(); resolve('connected'); });
      socket.on('connect_error', (error) => { clearTimeout(timer); resolve(`connect_error: ${error.message}`); });
    }), [connector.origin, jwt]);
    check(outcome === 'connected', `the cross-origin credentialed client connected: ${outcome}`);
    await desktop.close();
  }

  // The recovered events are the most interesting: put them in view for the screenshot.
  await page.locator('#events > li[data-recovered="true"]').first().scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshotPath, fullPage: true });
  console.log(`screenshot: ${screenshotPath}`);
  check(browserLog.filter((line) => line.startsWith('page error')).length === 0,
    `no script errors on the page:\n${browserLog.join('\n')}`);
  console.log(`test page browser test passed (${mode} mode)`);
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
