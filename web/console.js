// The mpush-ts admin console: plain JavaScript, no build step and no dependency, so the file the
// node serves is the file in the repository. It talks only to the node's own HTTP API, with the
// bearer secret kept in sessionStorage (this tab, until it closes), never in a URL.

const SECRET_KEY = 'mpush-ts.console.secret';
/** How often the overview (nodes, ack latency, disconnects) is read again. */
const POLL_MS = 1000;
/** How often a running broadcast's counts are read again. */
const TASK_POLL_MS = 400;
/** A broadcast just accepted may not have reached its nodes yet ("unknown task"): wait this long. */
const TASK_START_GRACE_MS = 3000;

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** One call of the node's API (relative to /admin/, so a proxy prefix keeps working). */
async function api(method, path, body) {
  const headers = {};
  const secret = sessionStorage.getItem(SECRET_KEY);
  if (secret) headers.authorization = `Bearer ${secret}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`../api/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const problems = Array.isArray(data.problems) ? `: ${data.problems.join('; ')}` : '';
    throw new ApiError(res.status, `${data.error ?? `HTTP ${res.status}`}${problems}`);
  }
  return data;
}

// ---- small DOM helpers (text only: nothing the API returns is ever parsed as HTML) ----------------

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text === undefined || text === null || text === '' ? '—' : String(text);
  if (className) td.className = className;
  return td;
}

function fillRows(tbody, rows, empty) {
  const trs = rows.map((cells) => {
    const tr = document.createElement('tr');
    tr.append(...cells);
    return tr;
  });
  if (trs.length === 0) {
    const tr = document.createElement('tr');
    const td = cell(empty);
    td.colSpan = tbody.closest('table').querySelectorAll('th').length;
    td.className = 'muted';
    tr.append(td);
    trs.push(tr);
  }
  tbody.replaceChildren(...trs);
}

function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : '';
}

function dateTime(ms) {
  return ms ? new Date(ms).toLocaleString() : '';
}

function ago(ms) {
  if (!ms) return '';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  const span = s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
  return `${dateTime(ms)} (${span} ago)`;
}

// ---- sign-in ---------------------------------------------------------------------------------

let polling = false;

function showSignIn(message) {
  polling = false;
  $('console').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message ?? '';
  $('live').textContent = '';
  $('secret').focus();
}

function showConsole(open) {
  $('sign-in').hidden = true;
  $('console').hidden = false;
  $('open-note').hidden = !open;
  $('sign-out').hidden = open;
}

/** Tries the API with what the session holds: a 401 asks for the secret, anything else opens the console. */
async function enter() {
  try {
    const overview = await api('GET', 'console/overview');
    showConsole(!sessionStorage.getItem(SECRET_KEY));
    renderOverview(overview);
    if (!polling) {
      polling = true;
      setTimeout(poll, POLL_MS);
    }
  } catch (err) {
    if (err.status === 401) {
      const had = sessionStorage.getItem(SECRET_KEY);
      sessionStorage.removeItem(SECRET_KEY);
      return showSignIn(had ? 'That secret was refused.' : '');
    }
    showSignIn(`The node did not answer: ${err.message}`);
  }
}

$('sign-in-form').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem(SECRET_KEY, $('secret').value);
  $('secret').value = '';
  enter();
});

$('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(SECRET_KEY);
  showSignIn('Signed out.');
});

/** Any 401 later (the secret changed): back to the sign-in. True when it was one. */
function refused(err) {
  if (err.status !== 401) return false;
  sessionStorage.removeItem(SECRET_KEY);
  showSignIn('The secret was refused; sign in again.');
  return true;
}

// ---- overview: nodes, ack latency, disconnects -----------------------------------------------

function renderOverview(o) {
  $('node-id').textContent = `node ${o.node}`;
  $('live').textContent = `live · ${time(o.at)}`;
  $('live').className = 'live ok';
  fillRows(
    $('nodes'),
    o.nodes.map((n) => {
      const id = cell(n.self ? `${n.id} (this node)` : n.id);
      return [
        id,
        cell(n.device),
        cell(n.gateway),
        cell(n.connections),
        cell(n.onlineUsers),
        cell(n.pushRate === null ? null : n.pushRate),
      ];
    }),
    'no live node in the registry',
  );
  $('registry-error').textContent = o.registryError ? `node registry: ${o.registryError}` : '';
  const l = o.ackLatency;
  $('ack-latency').textContent = l
    ? `p50 ${l.p50Ms} ms · p90 ${l.p90Ms} ms · p99 ${l.p99Ms} ms (${l.count} acks)`
    : '—';
  $('pending-acks').textContent = String(o.pendingAcks);
  const counts = Object.entries(o.disconnects.byReason)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${reason}: ${n}`);
  $('disconnect-counts').textContent = counts.length ? `since start: ${counts.join(' · ')}` : '';
  fillRows(
    $('disconnects'),
    o.disconnects.recent.map((d) => [
      cell(time(d.at)),
      cell(d.reason),
      cell(d.userId),
      cell(d.clientType >= 0 ? d.clientType : null),
      cell(d.transport),
      cell(d.deviceId),
    ]),
    'no disconnect yet',
  );
}

async function poll() {
  if (!polling) return;
  try {
    renderOverview(await api('GET', 'console/overview'));
  } catch (err) {
    if (refused(err)) return;
    $('live').textContent = `not answering: ${err.message}`;
    $('live').className = 'live down';
  }
  if (polling) setTimeout(poll, POLL_MS);
}

// ---- user lookup -----------------------------------------------------------------------------

$('lookup-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const userId = $('lookup-user').value;
  const user = encodeURIComponent(userId);
  $('lookup-status').textContent = 'looking up…';
  try {
    const [routes, inbox] = await Promise.all([
      api('GET', `users/${user}`),
      api('GET', `users/${user}/inbox`),
    ]);
    fillRows(
      $('devices'),
      routes.devices.map((d) => [
        cell(d.clientTypeName),
        cell(d.deviceId),
        cell(d.osName),
        cell(d.clientVersion),
        cell(d.node),
        cell(d.connectedAt ? ago(d.connectedAt) : 'on another node'),
      ]),
      'offline: no device online',
    );
    fillRows(
      $('inbox'),
      inbox.messages.map((m) => [
        cell(m.messageId),
        cell(dateTime(m.storedAt)),
        cell(dateTime(m.expiresAt)),
        cell(m.pendingFor.join(', ')),
        cell(m.bytes),
        cell(m.preview),
      ]),
      'nothing kept',
    );
    $('lookup-status').textContent = `${userId}: ${routes.online ? 'online' : 'offline'}`;
  } catch (err) {
    if (!refused(err)) $('lookup-status').textContent = err.message;
  }
});

// ---- push ------------------------------------------------------------------------------------

function timeline(t) {
  const steps = ['check-gateway-conn', 'send-to-gateway-begin', 'send-to-gateway-end', 'end'];
  return steps
    .filter((s) => t[s] !== undefined)
    .map((s) => `${s} +${t[s] - t.begin}`)
    .join(' · ');
}

$('push-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('push-status').textContent = 'pushing…';
  const body = {
    userId: $('push-user').value,
    content: $('push-content').value,
    ackModel: $('push-ack').value,
  };
  const timeout = $('push-timeout').value;
  if (timeout !== '') body.timeout = Number(timeout);
  try {
    const { results } = await api('POST', 'push', body);
    fillRows(
      $('push-results'),
      results.map((r) => [
        cell(r.clientType >= 0 ? r.clientType : 'none'),
        cell(r.result, `result-${r.result}`),
        cell(r.reason),
        cell(r.messageId),
        cell(timeline(r.timeline)),
      ]),
      'no result',
    );
    $('push-status').textContent = results.map((r) => r.result).join(', ');
  } catch (err) {
    if (!refused(err)) $('push-status').textContent = err.message;
  }
});

// ---- broadcast -------------------------------------------------------------------------------

/** The task the page follows: its id, ack model and when it was accepted. */
let task = null;

/** One status for the task: running while any node runs it; cancelled if any cancelled it. */
function taskStatus(r, startedAt) {
  const statuses = r.nodes.map((n) => n.status);
  const starting =
    r.nodes.some((n) => n.error === 'unknown task') && Date.now() - startedAt < TASK_START_GRACE_MS;
  if (starting || statuses.includes('running')) return 'running';
  if (statuses.includes('cancelled')) return 'cancelled';
  if (statuses.includes('error')) return 'error';
  return 'done';
}

function renderTask(r, status, ackModel) {
  const settled = ackModel === 'NO_ACK' ? r.sent + r.failed : r.acked + r.failed;
  const whole = r.matched || 1;
  const percent = r.matched ? Math.floor((100 * settled) / r.matched) : status === 'running' ? 0 : 100;
  $('bc-seg-acked').style.width = `${(100 * r.acked) / whole}%`;
  // Written and still waiting for its ack (an ack timeout moves a written one to failed).
  const waiting = ackModel === 'NO_ACK' ? r.sent : Math.max(0, r.sent - r.acked - r.failed);
  $('bc-seg-sent').style.width = `${(100 * waiting) / whole}%`;
  $('bc-seg-failed').style.width = `${(100 * r.failed) / whole}%`;
  $('bc-bar').setAttribute('aria-valuenow', String(percent));
  $('bc-progress').textContent = `${percent} %`;
  $('bc-status').textContent = status;
  for (const k of ['matched', 'sent', 'acked', 'failed']) $(`bc-${k}`).textContent = String(r[k]);
  $('bc-cancel').disabled = status !== 'running';
  $('bc-error').textContent =
    status === 'error'
      ? r.nodes
          .map((n) => n.error)
          .filter(Boolean)
          .join('; ')
      : '';
  return { settled, percent };
}

async function followTask(t) {
  if (task !== t) return; // another broadcast took over
  try {
    const r = await api('GET', `broadcast/${encodeURIComponent(t.id)}`);
    const status = taskStatus(r, t.startedAt);
    const { settled } = renderTask(r, status, t.ackModel);
    // Acks of a finished walk still come in: follow until every matched device has its outcome.
    if (status === 'running' || (status === 'done' && settled < r.matched))
      setTimeout(() => followTask(t), TASK_POLL_MS);
  } catch (err) {
    if (!refused(err)) $('bc-error').textContent = err.message;
  }
}

$('broadcast-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const body = { content: $('bc-content').value, ackModel: $('bc-ack').value };
  const target = $('bc-target').value;
  if (target === 'tags')
    body.tags = $('bc-tags')
      .value.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  if (target === 'condition') body.condition = $('bc-condition').value;
  const rate = $('bc-rate').value;
  if (rate !== '') body.broadcastRate = Number(rate);
  $('bc-error').textContent = '';
  try {
    const { taskId } = await api('POST', 'broadcast', body);
    task = { id: taskId, ackModel: body.ackModel, startedAt: Date.now() };
    $('bc-task').textContent = taskId;
    renderTask({ matched: 0, sent: 0, acked: 0, failed: 0, nodes: [] }, 'running', body.ackModel);
    followTask(task);
  } catch (err) {
    if (!refused(err)) $('bc-error').textContent = err.message;
  }
});

$('bc-cancel').addEventListener('click', async () => {
  if (!task) return;
  const t = task;
  try {
    const r = await api('DELETE', `broadcast/${encodeURIComponent(t.id)}`);
    renderTask(r, taskStatus(r, 0), t.ackModel);
  } catch (err) {
    if (!refused(err)) $('bc-error').textContent = err.message;
  }
});

enter();
