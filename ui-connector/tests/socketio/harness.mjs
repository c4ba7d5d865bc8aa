// Starts the real binaries and speaks to them as Pub/Sub and desktops do.
// Environment (set by ../socketio_clients.rs): CONNECTOR_BIN, INTERCEPTOR_BIN, REDIS_URL.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';

export const PROJECT = 'socketio-test-project';
const { CONNECTOR_BIN, INTERCEPTOR_BIN, REDIS_URL } = process.env;
if (!CONNECTOR_BIN || !INTERCEPTOR_BIN || !REDIS_URL) {
  throw new Error('CONNECTOR_BIN, INTERCEPTOR_BIN and REDIS_URL must be set (run through cargo test)');
}

const secret = crypto.randomBytes(32).toString('hex');
const secretDir = fs.mkdtempSync(path.join(os.tmpdir(), 'connector-secret-'));
const secretPath = path.join(secretDir, 'jwt_secret_key');
fs.writeFileSync(secretPath, `${secret}\n`);

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const children = new Set();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

/** Starts a binary on a free port and waits (bounded) until /status answers. */
async function start(bin, env) {
  const port = await freePort();
  const child = spawn(bin, [], {
    env: { PATH: process.env.PATH, PORT: String(port), REDIS_URL, RUST_LOG: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.add(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      const response = await fetch(`${url}/status`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`${bin} exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${bin} did not answer /status within 15 s`);
    await new Promise((r) => setTimeout(r, 20)); // process start-up: nothing to await but the port
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      children.delete(child);
    },
  };
}

export function startConnector(env = {}) {
  return start(CONNECTOR_BIN, {
    GCP_PROJECT_ID: PROJECT,
    JWT_SECRET_KEY_PATH: secretPath,
    AUTH_OPTION: 'Skip',
    ...env,
  });
}

/** The Authorization value the interceptor's CX webhook accepts (a static header secret). */
export const CX_WEBHOOK_AUTHORIZATION = `Bearer ${crypto.randomBytes(24).toString('hex')}`;
const cxSecretPath = path.join(secretDir, 'cx_webhook_header');
fs.writeFileSync(cxSecretPath, `${CX_WEBHOOK_AUTHORIZATION}\n`);

export function startInterceptor(env = {}) {
  return start(INTERCEPTOR_BIN, { CX_WEBHOOK_HEADER_SECRET_PATH: cxSecretPath, ...env });
}

const b64url = (data) => Buffer.from(data).toString('base64url');

/** An HS256 token signed with the connectors' secret. */
export function token({ ttlSeconds = 3600, project = PROJECT, user = 'agent@example.com', alg = 'HS256' } = {}) {
  const header = b64url(JSON.stringify({ alg, typ: 'JWT' }));
  const claims = b64url(JSON.stringify({
    exp: Math.floor(Date.now() / 1000) + ttlSeconds,
    gcp_agent_assist_project: project,
    gcp_agent_assist_user: user,
  }));
  const signature = crypto.createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${signature}`;
}

/** Connects and resolves with the socket, or rejects with the connect_error. */
export function connect(url, options = {}) {
  const socket = io(url, { reconnection: false, transports: ['websocket'], forceNew: true, ...options });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
}

/** Emits and resolves with every argument of the acknowledgement. */
export function requestAll(socket, event, argument) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event} in 5 s`)), 5000);
    socket.emit(event, argument, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

/** The four kinds Pub/Sub pushes, each to its endpoint `/<kind>`. */
export const PUSH_EVENT_TYPES = [
  'human-agent-assistant-event',
  'conversation-lifecycle-event',
  'new-message-event',
  'new-recognition-result-notification-event',
];

/** Every event name a desktop may receive: the pushed kinds and the CX webhook's. */
export const EVENT_TYPES = [...PUSH_EVENT_TYPES, 'virtual-agent-event'];

/** Every event a socket receives, in order, with a way to await the next ones. */
export function recorder(socket) {
  const received = [];
  const waiters = [];
  socket.onAny((name, payload) => {
    if (!EVENT_TYPES.includes(name)) return;
    received.push({ name, payload });
    waiters.splice(0).forEach((wake) => wake());
  });
  return {
    received,
    async take(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new Error(`expected ${count} events, got ${received.length}`);
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, remaining);
          waiters.push(() => { clearTimeout(timer); resolve(); });
        });
      }
      return received.splice(0, count);
    },
  };
}

let messageCounter = 0;

/** Posts a Pub/Sub push for `conversation`; returns the HTTP status. */
export async function push(interceptorUrl, kind, conversation, { n = 0, messageId, attributes = {} } = {}) {
  messageCounter += 1;
  const data = JSON.stringify({ conversation, n });
  const body = {
    message: {
      data: Buffer.from(data).toString('base64'),
      messageId: messageId ?? `msg-${process.pid}-${messageCounter}`,
      publishTime: new Date().toISOString(),
      attributes,
    },
    subscription: 'projects/p/subscriptions/s',
  };
  const response = await fetch(`${interceptorUrl}/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return response.status;
}

/**
 * Calls the interceptor's Dialogflow CX webhook as CX does: a WebhookRequest naming the
 * conversation in its session parameters. Resolves with the status and the parsed answer.
 */
export async function cxWebhook(interceptorUrl, conversation, parameters = {}) {
  messageCounter += 1;
  const request = {
    detectIntentResponseId: `cx-${process.pid}-${messageCounter}`,
    fulfillmentInfo: { tag: 'handoff' },
    intentInfo: { displayName: 'billing.dispute_charge', confidence: 0.9 },
    pageInfo: { displayName: 'Transfer to an agent' },
    sessionInfo: {
      session: 'projects/p/locations/global/agents/a/sessions/s',
      parameters: { agent_assist_conversation: conversation, ...parameters },
    },
    languageCode: 'en',
  };
  const response = await fetch(`${interceptorUrl}/dialogflow-cx-webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: CX_WEBHOOK_AUTHORIZATION },
    body: JSON.stringify(request),
  });
  return { status: response.status, answer: await response.json() };
}

/** Reads one sample from /metrics. */
export async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : undefined;
}

/** Waits (bounded) for a condition that changes in the background. */
export async function eventually(check, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
