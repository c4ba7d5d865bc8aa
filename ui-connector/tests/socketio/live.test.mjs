// The connector's Socket.IO API, driven by socket.io-client 4 (the desktops' library) against
// the real binaries: two connectors and an interceptor sharing a real Redis.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  PROJECT, PUSH_EVENT_TYPES, connect, cxWebhook, eventually, metric, push, recorder, requestAll,
  startConnector, startInterceptor, token,
} from './harness.mjs';

let connectorA;
let connectorB;
let interceptor;

before(async () => {
  [connectorA, connectorB, interceptor] = await Promise.all([
    startConnector(), startConnector(), startInterceptor(),
  ]);
});

after(async () => {
  await Promise.all([connectorA, connectorB, interceptor].map((s) => s?.stop()));
});

const conversation = (id) => `projects/${PROJECT}/locations/global/conversations/${id}`;
const routed = (id) => `projects/${PROJECT}/conversations/${id}`;

test('register issues a token that opens a socket', async () => {
  const response = await fetch(`${connectorA.url}/register`, {
    method: 'POST',
    headers: { authorization: 'platform-token', 'content-type': 'application/json' },
    body: JSON.stringify({ gcp_agent_assist_user: 'agent@example.com' }),
  });
  assert.equal(response.status, 200);
  const { token: jwt } = await response.json();
  const socket = await connect(connectorA.url, { auth: { token: jwt } });
  assert.ok(socket.connected);
  socket.close();
});

test('missing and invalid tokens are refused with a reason, and only that client is told', async () => {
  const bystander = await connect(connectorA.url, { auth: { token: token() } });
  let bystanderTold = false;
  bystander.on('unauthenticated', () => { bystanderTold = true; });
  const cases = [
    [{}, /missing token/],
    [{ token: 'garbage' }, /malformed token/],
    [{ token: token({ project: 'someone-else' }) }, /another project/],
    [{ token: token({ ttlSeconds: -10 }) }, /expired/],
    [{ token: `${token()}x` }, /signature/],
  ];
  for (const [auth, reason] of cases) {
    await assert.rejects(connect(connectorA.url, { auth }), (error) => {
      assert.match(error.message, reason);
      return true;
    });
  }
  // The bystander is still connected and was told nothing.
  const ack = await requestAll(bystander, 'join-conversation', conversation('bystander'));
  assert.deepEqual(ack, [true, routed('bystander')]);
  assert.equal(bystanderTold, false);
  bystander.close();
});

test('join receives every event type with its fields; leave stops them', async () => {
  const socket = await connect(connectorA.url, { auth: { token: token() } });
  const events = recorder(socket);
  assert.deepEqual(await requestAll(socket, 'join-conversation', conversation('fields')), [true, routed('fields')]);
  assert.deepEqual(await requestAll(socket, 'join-conversation', routed('other')), [true, routed('other')]);
  for (const [i, kind] of PUSH_EVENT_TYPES.entries()) {
    const attributes = { participant_role: 'HUMAN_AGENT', message_id: `m-${i}` };
    assert.equal(await push(interceptor.url, kind, conversation('fields'), { n: i, attributes }), 204);
  }
  const received = await events.take(4);
  received.forEach(({ name, payload }, i) => {
    assert.equal(name, PUSH_EVENT_TYPES[i]);
    assert.equal(payload.data_type, PUSH_EVENT_TYPES[i]);
    assert.equal(payload.conversation_name, routed('fields'));
    assert.deepEqual(JSON.parse(payload.data), { conversation: conversation('fields'), n: i });
    assert.match(payload.ack_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(payload.publish_time);
    assert.ok(payload.message_id);
    assert.equal(typeof payload.offset, 'number');
    if (i > 0) assert.equal(payload.offset, received[i - 1].payload.offset + 1);
  });
  assert.equal(received[3].payload.participant_role, 'HUMAN_AGENT');
  assert.equal(received[3].payload.new_recognition_result_message_id, 'm-3');
  assert.equal(received[0].payload.participant_role, undefined);

  assert.deepEqual(await requestAll(socket, 'leave-conversation', conversation('fields')), [true, routed('fields')]);
  await push(interceptor.url, 'new-message-event', conversation('fields'), { n: 100 });
  await push(interceptor.url, 'new-message-event', routed('other'), { n: 200 });
  const [next] = await events.take(1);
  assert.equal(JSON.parse(next.payload.data).n, 200, 'nothing from the conversation it left');
  socket.close();
});

// The Python interceptor starts both fields from "" and overwrites them only with attributes
// that are present (`cloud-pubsub-interceptor/main.py:66-67,74-80,106-108` at 9425334).
test('a recognition event without attributes carries empty strings, not null', async () => {
  const socket = await connect(connectorA.url, { auth: { token: token() } });
  const events = recorder(socket);
  await requestAll(socket, 'join-conversation', conversation('no-attributes'));
  assert.equal(await push(interceptor.url, 'new-recognition-result-notification-event', conversation('no-attributes')), 204);
  const [{ payload }] = await events.take(1);
  assert.equal(payload.participant_role, '');
  assert.equal(payload.new_recognition_result_message_id, '');
});

test('the CX virtual agent context arrives as virtual-agent-event', async () => {
  const socket = await connect(connectorB.url, { auth: { token: token() } });
  const events = recorder(socket);
  assert.deepEqual(await requestAll(socket, 'join-conversation', conversation('cx')), [true, routed('cx')]);
  const { status, answer } = await cxWebhook(interceptor.url, conversation('cx'), { reason: 'refund' });
  assert.equal(status, 200);
  assert.deepEqual(answer.sessionInfo.parameters, {
    agent_assist_conversation: routed('cx'),
    agent_assist_context_published: true,
    agent_assist_context_pending: false,
  });
  const [{ name, payload }] = await events.take(1);
  assert.equal(name, 'virtual-agent-event');
  assert.equal(payload.data_type, 'virtual-agent-event');
  assert.equal(payload.conversation_name, routed('cx'));
  const context = JSON.parse(payload.data);
  assert.equal(context.parameters.reason, 'refund');
  assert.equal(context.intent.displayName, 'billing.dispute_charge');
  assert.equal(context.tag, 'handoff');
  assert.equal(typeof payload.offset, 'number');
  socket.close();
});

test('bad arguments are acknowledged with false and a reason', async () => {
  const socket = await connect(connectorA.url, { auth: { token: token() } });
  for (const bad of [17, '', { since: 3 }, { conversation_name: 'c', since: -1 }]) {
    const [ok, reason] = await requestAll(socket, 'join-conversation', bad);
    assert.equal(ok, false);
    assert.equal(typeof reason, 'string');
  }
  assert.ok(socket.connected, 'bad arguments never break the connection');
  socket.close();
});

test('recovery with since replays kept events, then continues live, across a reconnect', async () => {
  const id = 'recovery';
  for (const n of [1, 2, 3]) await push(interceptor.url, 'new-message-event', conversation(id), { n });
  const first = await connect(connectorA.url, { auth: { token: token() } });
  const firstEvents = recorder(first);
  const [ok, name, recovery] = await requestAll(first, 'join-conversation', { conversation_name: conversation(id), since: 0 });
  assert.equal(ok, true);
  assert.equal(name, routed(id));
  assert.equal(recovery.recovered, true);
  const replayed = await firstEvents.take(3);
  assert.deepEqual(replayed.map((e) => JSON.parse(e.payload.data).n), [1, 2, 3]);
  assert.equal(replayed[2].payload.offset, recovery.offset);
  await push(interceptor.url, 'new-message-event', conversation(id), { n: 4 });
  const [live] = await firstEvents.take(1);
  const lastSeen = live.payload.offset;
  first.close();

  // Missed while away, on the other instance.
  for (const n of [5, 6]) await push(interceptor.url, 'new-message-event', conversation(id), { n });
  const second = await connect(connectorB.url, { auth: { token: token() } });
  const secondEvents = recorder(second);
  const [, , again] = await requestAll(second, 'join-conversation', { conversation_name: routed(id), since: lastSeen });
  assert.deepEqual(again, { recovered: true, offset: lastSeen + 2 });
  await push(interceptor.url, 'new-message-event', conversation(id), { n: 7 });
  const resumed = await secondEvents.take(3);
  assert.deepEqual(resumed.map((e) => JSON.parse(e.payload.data).n), [5, 6, 7]);
  assert.deepEqual(resumed.map((e) => e.payload.offset), [lastSeen + 1, lastSeen + 2, lastSeen + 3]);

  // An offset the history no longer covers is reported, not silently skipped.
  const [, , stale] = await requestAll(second, 'join-conversation', { conversation_name: routed('never-seen'), since: 12345 });
  assert.equal(stale.recovered, false);
  second.close();
});

test('agents on two connector instances each get every event once', async () => {
  const id = 'two-instances';
  const sockets = await Promise.all([
    connect(connectorA.url, { auth: { token: token() } }),
    connect(connectorB.url, { auth: { token: token() } }),
    connect(connectorB.url, { auth: { token: token() } }),
  ]);
  const recorders = sockets.map(recorder);
  for (const socket of sockets) await requestAll(socket, 'join-conversation', conversation(id));
  assert.equal(await metric(connectorB.url, 'connector_conversations_subscribed'), 1,
    'one bus subscription for two sockets on the same instance');
  for (let n = 1; n <= 10; n += 1) {
    assert.equal(await push(interceptor.url, 'human-agent-assistant-event', conversation(id), { n }), 204);
  }
  // A redelivery is acknowledged but not delivered again.
  assert.equal(await push(interceptor.url, 'human-agent-assistant-event', conversation(id), { n: 10, messageId: 'dup-1' }), 204);
  assert.equal(await push(interceptor.url, 'human-agent-assistant-event', conversation(id), { n: 11, messageId: 'dup-1' }), 204);
  await push(interceptor.url, 'human-agent-assistant-event', conversation(id), { n: 999 });
  for (const events of recorders) {
    const received = await events.take(12);
    assert.deepEqual(received.map((e) => JSON.parse(e.payload.data).n), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 999]);
  }
  // Disconnecting releases the instance's subscription.
  sockets[1].close();
  sockets[2].close();
  await eventually(async () => (await metric(connectorB.url, 'connector_conversations_subscribed')) === 0,
    'connector B to release the conversation');
  sockets[0].close();
});

// Python checks the token at connect only (`ui-connector/main.py:241-251` at 9425334;
// `check_jwt` is called nowhere else): a socket outlives its token, and joins, leaves and events
// keep working. That is the default here too.
test('by default a socket outlives its token, as with the Python connector', async () => {
  const ttlSeconds = 1;
  const socket = await connect(connectorA.url, { auth: { token: token({ ttlSeconds }) } });
  const events = recorder(socket);
  let told = false;
  let disconnected = false;
  socket.on('unauthenticated', () => { told = true; });
  socket.on('disconnect', () => { disconnected = true; });
  // The strict mode acts within milliseconds of `exp`; wait well past it (the expiry itself is
  // what is under test, so there is no event to await).
  await new Promise((resolve) => setTimeout(resolve, ttlSeconds * 1000 + 1500));
  assert.equal(told, false);
  assert.equal(disconnected, false);
  assert.ok(socket.connected);
  assert.deepEqual(await requestAll(socket, 'join-conversation', conversation('outlives')),
    [true, routed('outlives')]);
  assert.equal(await push(interceptor.url, 'new-message-event', conversation('outlives'), { n: 1 }), 204);
  const [event] = await events.take(1);
  assert.equal(JSON.parse(event.payload.data).n, 1);
  // A new connection with the expired token is still refused.
  await assert.rejects(connect(connectorA.url, { auth: { token: token({ ttlSeconds: -1 }) } }), /expired/);
  socket.close();
});

test('with DISCONNECT_ON_TOKEN_EXPIRY a socket whose token expires is told alone and disconnected', async () => {
  const strict = await startConnector({ DISCONNECT_ON_TOKEN_EXPIRY: 'true' });
  try {
    const expiring = await connect(strict.url, { auth: { token: token({ ttlSeconds: 2 }) } });
    const other = await connect(strict.url, { auth: { token: token() } });
    let otherTold = false;
    other.on('unauthenticated', () => { otherTold = true; });
    const told = new Promise((resolve) => expiring.once('unauthenticated', resolve));
    const gone = new Promise((resolve) => expiring.once('disconnect', resolve));
    await told;
    await gone;
    assert.equal(otherTold, false);
    assert.ok(other.connected);
    other.close();
  } finally {
    await strict.stop();
  }
});

test('long-polling clients work too', async () => {
  const socket = await connect(connectorB.url, { auth: { token: token() }, transports: ['polling'] });
  const events = recorder(socket);
  await requestAll(socket, 'join-conversation', conversation('polling'));
  await push(interceptor.url, 'conversation-lifecycle-event', conversation('polling'), { n: 1 });
  const [event] = await events.take(1);
  assert.equal(event.name, 'conversation-lifecycle-event');
  socket.close();
});

test('a connector closes its sockets on SIGTERM so desktops reconnect elsewhere', async () => {
  const connector = await startConnector();
  const socket = await connect(connector.url, { auth: { token: token() } });
  const disconnected = new Promise((resolve) => socket.once('disconnect', resolve));
  const started = Date.now();
  await connector.stop();
  const reason = await disconnected;
  assert.ok(Date.now() - started < 10000);
  assert.match(String(reason), /server|transport close/);
});
