// Agent Assist test page logic (plain browser JavaScript, no build step).
//
// Why it exists: to show, in one page against a connector, what an agent desktop does (register
// for a token, connect over Socket.IO, join a conversation, receive its events), including
// recovery: the page tracks the last offset it received and, after a reconnect, re-joins with
// `since` so the events it missed are replayed and marked "recovered". Against
// `ui-connector --local` (body data-mode="local") it also plays Pub/Sub, pushing Dialogflow events
// to the push endpoints local mode serves. In production (data-mode="production") it registers
// with the platform token typed in the page, which is kept in memory only and sent nowhere but
// this connector's POST /register.
//
// Protocol (see the repository's docs): `join-conversation` with
// `{conversation_name, since}` is acked `(true, name, {recovered, offset})`, then the kept events
// after `since` arrive (offset <= the ack's offset: replayed), then live ones.
'use strict';

(function () {
  const KINDS = [
    'human-agent-assistant-event',
    'conversation-lifecycle-event',
    'new-message-event',
    'new-recognition-result-notification-event',
    'virtual-agent-event',
  ];
  // Kinds whose sample comes with Pub/Sub message attributes (`<kind>.attributes.json`).
  const KINDS_WITH_ATTRIBUTES = new Set(['new-recognition-result-notification-event']);
  // The kind posted to the Dialogflow CX webhook (its sample is a CX WebhookRequest), not pushed.
  const WEBHOOK_KIND = 'virtual-agent-event';
  const WEBHOOK_PATH = '/dialogflow-cx-webhook';
  // The conversation the samples name; replaced by the joined one before posting.
  const PLACEHOLDER = 'projects/demo-project/locations/global/conversations/demo-conversation';
  const ACK_TIMEOUT_MS = 10000;

  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    socket: null,
    // The joined conversation: as typed (used in posted samples) and location-free (as acked).
    joined: null, // {typed, name}
    lastOffset: null,
    seenOffsets: new Set(),
    // While a join is awaiting its ack, events are held here, then classified.
    joinPending: false,
    held: [],
    // Events with offset <= replayUpTo were replayed by the last join, labelled replayLabel.
    replayUpTo: 0,
    replayLabel: null,
    replaySince: 0,
    replayedCount: 0,
    samples: new Map(),
    postCounter: 0,
  };

  // ---------------------------------------------------------------- small helpers

  function setStatus(element, dataState, text) {
    element.dataset.state = dataState;
    element.textContent = text;
  }

  /** `projects/p/locations/l/conversations/c` -> `projects/p/conversations/c`, as the server does. */
  function withoutLocation(name) {
    const parts = name.split('/');
    if (parts.length >= 6 && parts[0] === 'projects' && parts[2] === 'locations' && parts[4] === 'conversations') {
      return ['projects', parts[1], 'conversations', ...parts.slice(5)].join('/');
    }
    return name;
  }

  function jwtClaims(token) {
    try {
      const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(payload));
    } catch (_) {
      return {};
    }
  }

  function base64OfUtf8(text) {
    const bytes = new TextEncoder().encode(text);
    let binary = '';
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return btoa(binary);
  }

  /** Replaces the placeholder conversation in every string value of a parsed sample. */
  function substituteConversation(value, conversation) {
    if (typeof value === 'string') return value.split(PLACEHOLDER).join(conversation);
    if (Array.isArray(value)) return value.map((v) => substituteConversation(v, conversation));
    if (value && typeof value === 'object') {
      const out = {};
      for (const [key, v] of Object.entries(value)) out[key] = substituteConversation(v, conversation);
      return out;
    }
    return value;
  }

  // ---------------------------------------------------------------- 1. register

  async function register() {
    const user = $('user-name').value.trim();
    // What the desktop platform issued; the connector checks it with its AUTH_OPTION provider
    // (local mode accepts anything).
    const platformToken = $('platform-token').value.trim();
    if (!platformToken) {
      setStatus($('token-status'), 'error', 'Registration needs a platform token.');
      return;
    }
    setStatus($('token-status'), 'pending', 'Registering…');
    try {
      const response = await fetch('/register', {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Authorization: platformToken,
        },
        body: JSON.stringify(user ? { gcp_agent_assist_user: user } : {}),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`POST /register answered ${response.status}: ${text}`);
      const token = JSON.parse(text).token;
      if (!token) throw new Error('POST /register answered without a token');
      state.token = token;
      const exp = jwtClaims(token).exp;
      const expiry = exp ? `, expires ${new Date(exp * 1000).toLocaleTimeString()}` : '';
      setStatus($('token-status'), 'ok', `Token issued${user ? ` for ${user}` : ''}${expiry}: ${token.slice(0, 16)}…`);
      $('token-status').title = token;
      $('connect').disabled = Boolean(state.socket && state.socket.connected);
    } catch (error) {
      setStatus($('token-status'), 'error', `Registration failed: ${error.message}`);
    }
  }

  // ---------------------------------------------------------------- 2. connect

  function setConnection(dataState, text) {
    setStatus($('connection-state'), dataState, text);
    const connected = dataState === 'connected';
    $('connect').disabled = connected || !state.token;
    $('connect').textContent = state.socket && !connected ? 'Reconnect' : 'Connect';
    $('disconnect').disabled = !state.socket || dataState === 'disconnected' || dataState === 'error';
    $('join').disabled = !connected;
    $('leave').disabled = !connected || !state.joined;
  }

  function connect() {
    if (state.socket) {
      // A reconnect: the `connect` handler re-joins with `since`.
      setConnection('connecting', 'Reconnecting…');
      state.socket.connect();
      return;
    }
    setConnection('connecting', 'Connecting…');
    // Same origin, default path /socket.io/. The auth callback reads the current token on every
    // (re)connection, so registering again takes effect at the next reconnect.
    const socket = io({ auth: (cb) => cb({ token: state.token }) });
    state.socket = socket;
    socket.on('connect', () => {
      setConnection('connected', `Connected (socket id ${socket.id}).`);
      if (state.joined) join(state.joined.typed, { rejoin: true });
    });
    socket.on('disconnect', (reason) => {
      // The client retries by itself unless it or the server ended the connection on purpose.
      const final = reason === 'io client disconnect' || reason === 'io server disconnect';
      setConnection(final ? 'disconnected' : 'connecting',
        `Disconnected (${reason})${final ? '.' : '; reconnecting…'}`);
    });
    socket.on('connect_error', (error) => {
      setConnection('error', `Connection refused: ${error.message}`);
    });
    for (const kind of KINDS) socket.on(kind, (event) => receive(event));
  }

  function disconnect() {
    if (state.socket) state.socket.disconnect();
  }

  // ---------------------------------------------------------------- 3. join / leave

  /**
   * Joins `typed`. A first join asks for everything kept (`since: 0`) and labels it "history";
   * a re-join after a reconnect asks for what came after the last offset received and labels it
   * "recovered".
   */
  function join(typed, { rejoin = false } = {}) {
    const socket = state.socket;
    if (!socket || !socket.connected) return;
    const name = withoutLocation(typed);
    if (!rejoin) {
      if (state.joined && state.joined.name !== name) {
        socket.emit('leave-conversation', state.joined.typed);
      }
      if (!state.joined || state.joined.name !== name) resetEvents();
    }
    const since = state.lastOffset === null ? 0 : state.lastOffset;
    state.joined = { typed, name };
    state.joinPending = true;
    state.held = [];
    setStatus($('join-status'), 'pending', `Joining ${name} (since offset ${since})…`);
    socket.timeout(ACK_TIMEOUT_MS).emit('join-conversation', { conversation_name: typed, since },
      (err, ok, ackName, info) => {
        state.joinPending = false;
        if (err || ok !== true) {
          const reason = err ? 'no answer' : String(ackName || 'refused');
          setStatus($('join-status'), 'error', `Join failed: ${reason}`);
          state.held = [];
          if (!rejoin) state.joined = null;
          return;
        }
        const recovered = Boolean(info && info.recovered);
        const latest = info && typeof info.offset === 'number' ? info.offset : 0;
        state.replayUpTo = latest;
        state.replayLabel = rejoin ? 'recovered' : 'history';
        state.replaySince = since;
        state.replayedCount = 0;
        // The offsets in (since, latest] are replayed next; lastOffset follows them as they
        // arrive. Until then `since` is the baseline a later re-join starts from.
        if (state.lastOffset === null) state.lastOffset = since;
        setStatus($('join-status'), 'joined', `Joined ${ackName} (latest offset ${latest}).`);
        const recovery = $('recovery-status');
        recovery.dataset.state = rejoin ? 'rejoined' : 'joined';
        recovery.dataset.recovered = String(recovered);
        recovery.dataset.ackOffset = String(latest);
        showRecovery();
        $('leave').disabled = false;
        const held = state.held;
        state.held = [];
        for (const event of held) receive(event);
      });
  }

  /** Says what the last join replayed, and the offset a re-join would start from. */
  function showRecovery() {
    const recovery = $('recovery-status');
    const recovered = recovery.dataset.recovered === 'true';
    const count = state.replayedCount;
    let text;
    if (state.replayLabel === 'recovered') {
      text = `Re-joined after reconnect with since ${state.replaySince}: recovered: ${recovered}; `
        + `${count} missed event(s) replayed, marked "recovered"`
        + (recovered ? '.' : ' (some missed events were no longer kept).');
    } else {
      text = `Joined with since ${state.replaySince}: ${count} earlier event(s) replayed, marked "history"`
        + (recovered ? '.' : ' (older ones were no longer kept).');
    }
    recovery.textContent = `${text} Last offset: `;
    const offset = document.createElement('span');
    offset.id = 'last-offset';
    offset.dataset.testid = 'last-offset';
    offset.textContent = state.lastOffset === null ? 'none' : String(state.lastOffset);
    recovery.append(offset, '.');
  }

  function leave() {
    if (!state.socket || !state.joined) return;
    const typed = state.joined.typed;
    state.socket.timeout(ACK_TIMEOUT_MS).emit('leave-conversation', typed, (err, ok, name) => {
      setStatus($('join-status'), err || ok !== true ? 'error' : 'left',
        err || ok !== true ? `Leave failed: ${err ? 'no answer' : name}` : `Left ${name}.`);
    });
    state.joined = null;
    state.lastOffset = null;
    $('leave').disabled = true;
  }

  // ---------------------------------------------------------------- events

  function resetEvents() {
    $('events').replaceChildren();
    $('events-empty').hidden = false;
    state.seenOffsets.clear();
    state.lastOffset = null;
    state.replayUpTo = 0;
    state.replayedCount = 0;
  }

  function receive(event) {
    if (state.joinPending) {
      state.held.push(event);
      return;
    }
    if (!state.joined || event.conversation_name !== state.joined.name) return;
    if (state.seenOffsets.has(event.offset)) return; // already shown
    state.seenOffsets.add(event.offset);
    const replayed = event.offset <= state.replayUpTo ? state.replayLabel : null;
    if (replayed) state.replayedCount += 1;
    state.lastOffset = Math.max(state.lastOffset || 0, event.offset);
    render(event, replayed);
    showRecovery();
  }

  /** A short text for a CX parameter value (CX sends dates, amounts... as objects). */
  function parameterText(value) {
    if (value && typeof value === 'object') {
      if ('amount' in value && 'currencyCode' in value) return `${value.amount} ${value.currencyCode}`;
      if ('year' in value && 'month' in value && 'day' in value) return `${value.year}-${value.month}-${value.day}`;
      return JSON.stringify(value);
    }
    return String(value);
  }

  /** What the virtual agent knew: intent, page, sentiment, what the caller said, parameters. */
  function summarizeVirtualAgent(data) {
    const parts = [];
    if (data.intent) parts.push(`Intent: ${data.intent.displayName || data.intent.name}`);
    if (data.page) parts.push(`Page: ${data.page.displayName || data.page.name}`);
    if (data.sentiment && typeof data.sentiment.score === 'number') parts.push(`Sentiment: ${data.sentiment.score}`);
    const said = data.input && (data.input.text || data.input.transcript);
    if (said) parts.push(`Caller: “${said}”`);
    const parameters = data.parameters || data.query || {};
    for (const [name, value] of Object.entries(parameters)) {
      if (name === 'agent_assist_conversation' || value === null) continue;
      parts.push(`${name} = ${parameterText(value)}`);
    }
    return parts.join(' · ');
  }

  /** A one-line, human summary of the Dialogflow payload. */
  function summarize(kind, data) {
    if (!data || typeof data !== 'object') return '';
    if (kind === WEBHOOK_KIND) return summarizeVirtualAgent(data);
    if (kind === 'human-agent-assistant-event') {
      const parts = [];
      for (const result of data.suggestionResults || []) {
        for (const a of (result.suggestArticlesResponse || {}).articleAnswers || []) parts.push(`Article: ${a.title}`);
        for (const f of (result.suggestFaqAnswersResponse || {}).faqAnswers || []) parts.push(`FAQ: ${f.question}`);
        for (const r of (result.suggestSmartRepliesResponse || {}).smartReplyAnswers || []) parts.push(`Reply: “${r.reply}”`);
        if (result.error) parts.push(`Error: ${result.error.message}`);
      }
      return parts.join(' · ');
    }
    if (data.newMessagePayload) {
      const m = data.newMessagePayload;
      return `${m.participantRole || 'participant'}: “${m.content}”`;
    }
    if (data.newRecognitionResultPayload) {
      const r = data.newRecognitionResultPayload;
      return `${r.isFinal ? 'Final' : 'Interim'} transcript: “${r.transcript || ''}”`;
    }
    return data.type || '';
  }

  function render(event, replayed) {
    let data;
    let pretty;
    try {
      data = JSON.parse(event.data);
      pretty = JSON.stringify(data, null, 2);
    } catch (_) {
      pretty = String(event.data);
    }

    const item = document.createElement('li');
    item.className = 'event';
    item.dataset.testid = 'event';
    item.dataset.eventType = event.data_type;
    item.dataset.offset = String(event.offset);
    item.dataset.recovered = String(replayed === 'recovered');
    item.dataset.replayed = replayed || 'live';

    const head = document.createElement('div');
    head.className = 'event-head';
    const kind = document.createElement('span');
    kind.className = `kind kind-${event.data_type}`;
    kind.textContent = event.data_type;
    head.append(kind);
    if (replayed) {
      const badge = document.createElement('span');
      badge.className = `badge ${replayed}`;
      badge.dataset.testid = `${replayed}-badge`;
      badge.textContent = replayed;
      head.append(badge);
    }
    const offset = document.createElement('span');
    offset.className = 'offset';
    offset.textContent = `offset ${event.offset}`;
    head.append(offset);

    const summary = document.createElement('p');
    summary.className = 'summary';
    summary.textContent = summarize(event.data_type, data);

    const meta = document.createElement('dl');
    meta.className = 'meta';
    const fields = [
      ['ack time', event.ack_time],
      ['publish time', event.publish_time],
      ['conversation', event.conversation_name],
      ['message id', event.message_id],
      ['participant role', event.participant_role],
      ['recognised message id', event.new_recognition_result_message_id],
    ];
    for (const [label, value] of fields) {
      if (value === undefined || value === null) continue;
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.textContent = String(value);
      meta.append(dt, dd);
    }

    const details = document.createElement('details');
    details.open = true;
    const detailsSummary = document.createElement('summary');
    detailsSummary.textContent = event.data_type === WEBHOOK_KIND
      ? 'Virtual agent context (data)' : 'Dialogflow payload (data)';
    const pre = document.createElement('pre');
    pre.dataset.testid = 'event-data';
    pre.textContent = pretty;
    details.append(detailsSummary, pre);

    item.append(head, summary, meta, details);

    // Newest (highest offset) first, wherever an event arrives from.
    const list = $('events');
    const before = Array.from(list.children).find((li) => Number(li.dataset.offset) < event.offset);
    list.insertBefore(item, before || null);
    $('events-empty').hidden = true;
  }

  // ---------------------------------------------------------------- 4. post samples

  async function loadSample(kind) {
    if (!state.samples.has(kind)) {
      const fetchJson = async (path) => {
        const response = await fetch(path);
        if (!response.ok) throw new Error(`GET ${path} answered ${response.status}`);
        return response.json();
      };
      const data = await fetchJson(`/demo/samples/${kind}.json`);
      const attributes = KINDS_WITH_ATTRIBUTES.has(kind)
        ? await fetchJson(`/demo/samples/${kind}.attributes.json`)
        : {};
      state.samples.set(kind, { data, attributes });
    }
    return state.samples.get(kind);
  }

  async function postSample(kind) {
    const conversation = state.joined ? state.joined.typed : $('conversation-name').value.trim();
    const entry = document.createElement('li');
    entry.dataset.testid = 'post-result';
    entry.dataset.kind = kind;
    entry.dataset.state = 'pending';
    entry.textContent = `${kind}: posting…`;
    $('post-log').prepend(entry);
    state.postCounter += 1;
    // Unique per post, so the interceptor's redelivery check never drops a repeat.
    const messageId = `demo-${Date.now()}-${state.postCounter}-${Math.floor(Math.random() * 1e6)}`;
    try {
      const sample = await loadSample(kind);
      if (kind === WEBHOOK_KIND) {
        await postToWebhook(entry, kind, sample.data, conversation, messageId);
        return;
      }
      const data = JSON.stringify(substituteConversation(sample.data, conversation));
      const project = (conversation.match(/^projects\/([^/]+)\//) || [])[1] || 'demo-project';
      const body = {
        message: {
          data: base64OfUtf8(data),
          messageId,
          publishTime: new Date().toISOString(),
          attributes: sample.attributes,
        },
        subscription: `projects/${project}/subscriptions/agent-assist-${kind}`,
      };
      const response = await fetch(`/${kind}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      entry.dataset.status = String(response.status);
      entry.dataset.state = response.ok ? 'ok' : 'error';
      const text = response.ok ? '' : ` ${await response.text()}`;
      entry.textContent = `${kind}: ${response.status}${text} (messageId ${messageId})`;
    } catch (error) {
      entry.dataset.state = 'error';
      entry.textContent = `${kind}: ${error.message}`;
    }
  }

  /**
   * Calls the CX webhook as Dialogflow CX would: the sample WebhookRequest with the conversation
   * in its session parameters and a `detectIntentResponseId` of its own (the webhook answers a
   * repeated id from memory). Local mode's webhook needs no credentials.
   */
  async function postToWebhook(entry, kind, sample, conversation, callId) {
    const request = substituteConversation(sample, conversation);
    request.detectIntentResponseId = callId;
    const response = await fetch(WEBHOOK_PATH, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(request),
    });
    const text = await response.text();
    entry.dataset.status = String(response.status);
    entry.dataset.state = response.ok ? 'ok' : 'error';
    let outcome = text;
    try {
      const parameters = JSON.parse(text).sessionInfo.parameters;
      outcome = `published: ${parameters.agent_assist_context_published}`;
    } catch (_) { /* an error body: shown as it is */ }
    entry.textContent = `${kind}: ${response.status} ${outcome} (detectIntentResponseId ${callId})`;
  }

  // ---------------------------------------------------------------- wiring

  // Local mode accepts any platform token: fill one in so the page works in one click.
  if (document.body.dataset.mode === 'local') $('platform-token').value = 'Bearer local-demo';

  $('register').addEventListener('click', register);
  $('connect').addEventListener('click', connect);
  $('disconnect').addEventListener('click', disconnect);
  $('join').addEventListener('click', () => {
    const typed = $('conversation-name').value.trim();
    if (typed) join(typed);
  });
  $('leave').addEventListener('click', leave);
  $('clear-events').addEventListener('click', () => {
    $('events').replaceChildren();
    $('events-empty').hidden = false;
  });
  for (const button of document.querySelectorAll('button.post-sample')) {
    button.addEventListener('click', () => postSample(button.dataset.kind));
  }
})();
