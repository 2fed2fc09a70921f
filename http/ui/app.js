/* pubsubgw console: a single page over the gateway's own REST API and event streams.
 * Everything shown is set as text (never parsed as HTML): node names, payloads, errors and
 * answers are data from elsewhere. The token lives in this tab's session storage only. */
'use strict';

const API = new URL('..', location.href); /* the gateway's root, also behind a path prefix */
const TOKEN_KEY = 'pubsubgw.token';
const EVENT_KINDS = ['items', 'retract', 'purge', 'delete', 'subscription', 'configuration'];

let me = null;        /* GET /v1/token: {authentication, name, scopes, nodes} */
let page = null;      /* what the current view must stop when left: timers, streams */

/* ---- DOM ---- */

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

const main = () => document.getElementById('main');

function show(...children) {
  const m = main();
  m.replaceChildren();
  append(m, children);
}

function toast(text, bad) {
  const t = h('div', { class: bad ? 'bad' : null }, text);
  document.getElementById('toast').append(t);
  setTimeout(() => t.remove(), bad ? 8000 : 4000);
}

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function pretty(value) {
  return h('pre', {}, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
}

function table(headers, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted' }, empty || 'None.');
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', class: x.cls }, x.text || x)))),
      h('tbody', {}, rows)));
}

/* A confirmation in a modal dialog (keyboard: Escape cancels, focus starts on Cancel). */
function confirmDialog(question, action) {
  return new Promise((resolve) => {
    const d = h('dialog', { 'aria-label': 'Confirm' },
      h('p', {}, question),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'quiet', 'data-cancel': true, onclick: () => d.close('no') }, 'Cancel'),
        h('button', { type: 'button', class: 'danger', 'data-confirm': true, onclick: () => d.close('yes') }, action)));
    d.addEventListener('close', () => { resolve(d.returnValue === 'yes'); d.remove(); });
    document.body.append(d);
    d.showModal();
    d.querySelector('[data-cancel]').focus();
  });
}

/* ---- the API ---- */

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function headers(extra) {
  const hd = Object.assign({ Accept: 'application/json' }, extra || {});
  if (token()) hd.Authorization = 'Bearer ' + token();
  return hd;
}

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || ('HTTP ' + status));
    this.status = status;
    this.problem = problem;
  }
}

/* A request to the API; body is sent as JSON, or as it is when its type is given. */
async function api(method, path, body, type) {
  const init = { method, headers: headers(body !== undefined ? { 'Content-Type': type || 'application/json' } : {}) };
  if (body !== undefined) init.body = type ? body : JSON.stringify(body);
  let r;
  try {
    r = await fetch(new URL(path, API), init);
  } catch (e) {
    throw new ApiError(0, { detail: 'the gateway did not answer (' + e.message + ')' });
  }
  const text = await r.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch (e) { data = { detail: text.slice(0, 200) }; } }
  if (r.status === 401 && me && me.authentication) { signOut('The token was refused; enter it again.'); }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

const enc = encodeURIComponent;

/* What the token may do: the console offers nothing else. */
const can = (scope) => !!me && me.scopes.includes(scope);

function glob(pattern) {
  let re = '^';
  for (const c of pattern) re += c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  return new RegExp(re + '$');
}

const nodeAllowed = (node) => !me || !me.nodes || me.nodes.some((p) => glob(p).test(node));

/* ---- signing in ---- */

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  login(message);
}

function login(message) {
  stopPage();
  document.getElementById('nav').hidden = true;
  document.getElementById('signout').hidden = true;
  document.getElementById('who').textContent = '';
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const err = h('p', { class: 'error', role: 'alert' }, message || '');
  show(h('div', { class: 'login card' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'This gateway asks for an API token. It is kept in this tab only (session storage) and sent as a bearer token.'),
    h('form', { class: 'stack', onsubmit: async (e) => {
      e.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      try {
        await start();
      } catch (x) {
        sessionStorage.removeItem(TOKEN_KEY);
        err.textContent = x.status === 401 ? 'This token is not valid here.' : x.message;
        input.focus();
      }
    } },
    h('label', { for: 'token' }, 'API token', input), err,
    h('div', {}, h('button', { type: 'submit' }, 'Open the console')))));
  input.focus();
}

async function start() {
  me = await api('GET', 'v1/token');
  document.getElementById('who').textContent = me.authentication
    ? 'token ' + (me.name || '') + ' · ' + me.scopes.join(', ') + (me.nodes ? ' · nodes ' + me.nodes.join(', ') : '')
    : 'no tokens configured: open gateway';
  document.getElementById('signout').hidden = !me.authentication;
  for (const a of document.querySelectorAll('#nav a')) a.hidden = !!a.dataset.scope && !can(a.dataset.scope);
  document.getElementById('nav').hidden = false;
  route();
}

/* ---- routing ---- */

function stopPage() {
  if (!page) return;
  for (const t of page.timers) clearInterval(t);
  for (const c of page.aborts) c.abort();
  page = null;
}

function newPage() {
  stopPage();
  page = { timers: [], aborts: [] };
  return page;
}

function every(ms, fn) { page.timers.push(setInterval(fn, ms)); }

function route() {
  if (!me) return;
  const hash = location.hash.replace(/^#\/?/, '') || 'overview';
  const [path, query] = hash.split('?');
  const parts = path.split('/').map(decodeURIComponent);
  const params = new URLSearchParams(query || '');
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === '#/' + parts[0]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  newPage();
  const views = { overview, nodes: parts[1] !== undefined ? () => nodeView(parts.slice(1).join('/')) : nodesView,
    subscriptions: parts[1] ? () => subView(parts[1]) : () => subsView(params), feeds: feedsView };
  const view = views[parts[0]] || notFound;
  Promise.resolve(view()).catch((e) => show(h('h1', {}, 'Could not load'), h('p', { class: 'error' }, e.message)));
  main().focus({ preventScroll: true });
}

function notFound() { show(h('h1', {}, 'Not here'), h('p', {}, h('a', { href: '#/overview' }, 'Back to the overview'))); }

/* ---- overview ---- */

function span(ms) {
  return ms < 90000 ? Math.round(ms / 1000) + ' s' : Math.round(ms / 60000) + ' min';
}

function chart(title, series, pts) {
  const W = 300, H = 90, pad = 4;
  const rates = series.map((s) => pts.map((p) => (p[s.key] * 1000) / Math.max(p.ms, 1)));
  const max = Math.max(1, ...rates.flat());
  const el = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
  el.append(svg('line', { x1: 0, y1: H - pad, x2: W, y2: H - pad, class: 'axis' }));
  const summary = [];
  series.forEach((s, i) => {
    const r = rates[i];
    const step = r.length > 1 ? W / (r.length - 1) : W;
    const points = r.map((v, j) => `${(j * step).toFixed(1)},${(H - pad - (v / max) * (H - 2 * pad)).toFixed(1)}`);
    if (points.length === 1) points.push(`${W},${points[0].split(',')[1]}`);
    el.append(svg('polyline', { points: points.join(' '), class: 'line s' + (i + 1) }));
    summary.push(`${s.label} ${(r[r.length - 1] || 0).toFixed(1)}/s now`);
  });
  el.setAttribute('aria-label', `${title}: ${summary.join(', ')}; peak ${max.toFixed(1)}/s`);
  return h('div', { class: 'card chart' },
    h('div', { class: 'k' }, title + ' (per second, last ' + span(pts.reduce((a, p) => a + p.ms, 0)) + ')'),
    el,
    h('div', { class: 'muted' }, summary.join(' · ')));
}

async function overview() {
  const cards = h('div', { class: 'cards' });
  const charts = h('div', { class: 'charts' });
  const waiting = h('div', { class: 'cards' });
  show(h('h1', {}, 'Overview'), cards, h('h2', {}, 'Traffic'), charts, h('h2', {}, 'Waiting'), waiting);
  const card = (k, v, cls, attrs) => h('div', Object.assign({ class: 'card' }, attrs || {}), h('div', { class: 'k' }, k), h('div', { class: 'v ' + (cls || '') }, v));
  async function refresh() {
    const health = await fetch(new URL('v1/health', API), { headers: headers() }).then((r) => r.json()).catch(() => null);
    const comp = (health && health.components) || {};
    const up = health && health.xmpp === 'connected';
    const uptime = health ? health.uptime_seconds : 0;
    cards.replaceChildren(
      card('XMPP session', up ? 'connected' : 'down', up ? 'state-up' : 'state-down', { 'data-t': 'xmpp' }),
      card('Account', health && health.jid ? health.jid : (health && health.reason) || '—', 'wrap small'),
      card('Pubsub service', (health && health.service) || '—', 'wrap small'),
      card('Store', comp.store ? `${comp.store.kind}, ${comp.store.state}` : '—', comp.store && comp.store.state === 'down' ? 'state-down' : 'state-ok'),
      card('Replica', comp.replica ? `${comp.replica.role}${comp.replica.replicas ? ' of ' + comp.replica.replicas : ''}` : 'standalone'),
      card('Up for', `${Math.floor(uptime / 3600)} h ${Math.floor((uptime % 3600) / 60)} min`));
    if (!can('read')) return;
    const st = await api('GET', 'v1/stats');
    const pts = st.series.length ? st.series : [{ ms: 1, published: 0, delivered: 0, failed: 0, events: 0 }];
    charts.replaceChildren(
      chart('Published', [{ key: 'published', label: 'published' }], pts),
      chart('Events from XMPP', [{ key: 'events', label: 'events' }], pts),
      chart('Deliveries', [{ key: 'delivered', label: 'delivered' }, { key: 'failed', label: 'failed' }], pts));
    const items = [card('Pending deliveries', can('subscribe') ? h('a', { href: '#/subscriptions?filter=backlog' }, String(st.pending)) : String(st.pending), st.pending ? 'state-warn' : '', { 'data-t': 'pending' })];
    if (st.oldest_pending_at) items.push(card('Oldest waiting since', when(st.oldest_pending_at)));
    if (can('subscribe')) {
      const subs = (await api('GET', 'v1/subscriptions')).subscriptions;
      const dead = subs.reduce((a, s) => a + (s.dead_letters || 0), 0);
      items.push(card('Dead letters', h('a', { href: '#/subscriptions?filter=dead' }, String(dead)), dead ? 'state-bad' : '', { 'data-t': 'dead' }));
      items.push(card('Subscriptions', h('a', { href: '#/subscriptions' }, String(subs.length))));
    }
    items.push(card('Live streams open', String(st.streams_open)));
    waiting.replaceChildren(...items);
  }
  await refresh();
  every(5000, () => refresh().catch(() => {}));
}

/* ---- nodes ---- */

async function nodesView() {
  const list = (await api('GET', 'v1/nodes')).nodes.filter((n) => nodeAllowed(n.node));
  const body = h('tbody');
  const search = h('input', { type: 'search', id: 'node-search', placeholder: 'Filter by name', 'aria-label': 'Filter nodes' });
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    body.replaceChildren(...list.filter((n) => !q || n.node.toLowerCase().includes(q) || (n.name || '').toLowerCase().includes(q))
      .map((n) => h('tr', {}, h('td', { class: 'wrap' }, h('a', { href: '#/nodes/' + enc(n.node) }, n.node)), h('td', { class: 'wrap hide-narrow' }, n.name || ''))));
  };
  search.addEventListener('input', draw);
  draw();
  const parts = [h('h1', {}, 'Nodes'), h('p', { class: 'muted' }, `${list.length} on the service`),
    h('form', { class: 'inline', role: 'search', onsubmit: (e) => e.preventDefault() }, h('label', {}, 'Search', search))];
  if (can('admin')) {
    const name = h('input', { type: 'text', id: 'new-node', name: 'node', required: true, maxlength: 1024, autocomplete: 'off' });
    parts.push(h('form', { class: 'inline', 'aria-label': 'Create a node', onsubmit: async (e) => {
      e.preventDefault();
      try {
        const r = await api('POST', 'v1/nodes', { node: name.value.trim() });
        toast('Node ' + r.node + ' created');
        location.hash = '#/nodes/' + enc(r.node);
      } catch (x) { toast(x.message, true); }
    } }, h('label', { for: 'new-node' }, 'New node', name), h('button', { type: 'submit' }, 'Create node')));
  }
  parts.push(list.length ? h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Node'), h('th', { class: 'hide-narrow' }, 'Name'))), body))
    : h('p', { class: 'muted' }, 'No nodes yet.'));
  show(parts);
}

function itemView(it, retract) {
  return h('div', { class: 'ev', 'data-item': it.id || '' },
    h('div', {}, h('strong', {}, it.id || '(no id)'), it.publisher ? h('span', { class: 'muted' }, ' · ' + it.publisher) : null,
      retract && it.id ? [' ', h('button', { type: 'button', class: 'quiet', 'data-retract': it.id, onclick: () => retract(it.id) }, 'Retract')] : null),
    'payload' in it ? pretty(it.payload) : it.xml !== undefined ? pretty(it.xml) : h('span', { class: 'muted' }, 'no payload'));
}

/* The node's configuration form, field by field as the service declares it. */
function configForm(node, cfg) {
  const inputs = [];
  const rows = (cfg.fields || []).map((f) => {
    const value = cfg.config[f.var];
    const id = 'cfg-' + f.var.replace(/[^A-Za-z0-9_-]/g, '_');
    let input;
    if (f.type === 'boolean') {
      input = h('input', { type: 'checkbox', id, checked: value === true });
    } else if (f.type === 'list-single' && f.options) {
      input = h('select', { id }, f.options.map((o) => h('option', { value: o.value, selected: o.value === value }, o.label || o.value)));
    } else if (f.type === 'list-multi' && f.options) {
      input = h('select', { id, multiple: true }, f.options.map((o) => h('option', { value: o.value, selected: Array.isArray(value) && value.includes(o.value) }, o.label || o.value)));
    } else if (f.type === 'text-multi' || f.type === 'jid-multi') {
      input = h('textarea', { id, rows: 3 });
      input.value = Array.isArray(value) ? value.join('\n') : '';
    } else if (f.type === 'fixed') {
      return h('p', { class: 'muted' }, value || f.label || '');
    } else {
      input = h('input', { type: 'text', id });
      input.value = value === undefined ? '' : String(value);
    }
    if (!can('admin')) input.disabled = true;
    inputs.push([f, input]);
    return h('label', { for: id, class: f.type === 'boolean' ? 'check' : null }, f.type === 'boolean' ? input : null,
      f.label || f.var, f.type === 'boolean' ? null : input, h('span', { class: 'muted' }, f.var));
  });
  const form = h('form', { class: 'stack', 'aria-label': 'Configuration', onsubmit: async (e) => {
    e.preventDefault();
    const out = {};
    for (const [f, input] of inputs) {
      const before = cfg.config[f.var];
      let v;
      if (f.type === 'boolean') v = input.checked;
      else if (f.type === 'list-multi') v = [...input.selectedOptions].map((o) => o.value);
      else if (f.type === 'text-multi' || f.type === 'jid-multi') v = input.value.split('\n').filter((x) => x);
      else v = input.value;
      if (JSON.stringify(v) !== JSON.stringify(before)) out[f.var] = v;
    }
    if (!Object.keys(out).length) { toast('Nothing changed'); return; }
    try { await api('PUT', `v1/nodes/${enc(node)}/config`, { config: out }); toast('Configuration saved'); }
    catch (x) { toast(x.message, true); }
  } }, rows, can('admin') ? h('div', {}, h('button', { type: 'submit' }, 'Save configuration')) : null);
  return rows.length ? form : pretty(cfg.config);
}

async function nodeView(node) {
  const base = 'v1/nodes/' + enc(node);
  const info = await api('GET', base);
  const items = h('div', { class: 'tail', 'data-t': 'items' });
  const retract = async (id) => {
    if (!(await confirmDialog(`Retract the item ${id} from ${node}?`, 'Retract'))) return;
    try { await api('DELETE', `${base}/items/${enc(id)}`); toast('Item retracted'); loadItems(); } catch (x) { toast(x.message, true); }
  };
  const loadItems = async () => {
    const r = await api('GET', base + '/items?max_items=20');
    items.replaceChildren(...(r.items.length ? r.items.map((it) => itemView(it, can('publish') ? retract : null)) : [h('p', { class: 'muted' }, 'No items.')]));
  };
  const parts = [h('h1', {}, node), h('p', { class: 'muted' }, `${info.type} node`)];
  const acts = h('div', { class: 'actions' });
  if (can('subscribe')) acts.append(h('a', { href: '#/subscriptions?node=' + enc(node) }, 'Subscriptions of this node'));
  if (can('admin')) {
    acts.append(
      h('button', { type: 'button', class: 'quiet', onclick: async () => {
        if (!(await confirmDialog(`Purge every item of ${node}?`, 'Purge'))) return;
        try { await api('POST', base + '/purge'); toast('Purged'); loadItems(); } catch (x) { toast(x.message, true); }
      } }, 'Purge items'),
      h('button', { type: 'button', class: 'danger', onclick: async () => {
        if (!(await confirmDialog(`Delete the node ${node} and all its items?`, 'Delete node'))) return;
        try { await api('DELETE', base); toast('Node deleted'); location.hash = '#/nodes'; } catch (x) { toast(x.message, true); }
      } }, 'Delete node'));
  }
  parts.push(acts);

  /* live tail: the same event stream as GET /v1/nodes/{node}/events, read through fetch so the
   * token goes in a header (EventSource cannot send one) */
  const tail = h('div', { class: 'tail', 'data-t': 'tail', 'aria-live': 'polite' });
  const tailState = h('span', { class: 'muted' }, 'stopped');
  let ctl = null;
  const tailBtn = h('button', { type: 'button', id: 'tail-toggle', onclick: () => (ctl ? stopTail() : startTail()) }, 'Start live tail');
  const stopTail = () => { if (ctl) ctl.abort(); ctl = null; tailBtn.textContent = 'Start live tail'; tailState.textContent = 'stopped'; };
  const startTail = () => {
    ctl = new AbortController();
    page.aborts.push(ctl);
    tailBtn.textContent = 'Stop live tail';
    tailState.textContent = 'connecting…';
    follow(base + '/events', ctl, (ev) => {
      let data = null;
      try { data = JSON.parse(ev.data); } catch (e) { data = ev.data; }
      tail.prepend(h('div', { class: 'ev' },
        h('div', {}, h('span', { class: 'tag' }, ev.event || 'event'), ' ', data && data.item && data.item.id ? h('strong', {}, data.item.id) : null,
          h('span', { class: 'muted' }, ' · ' + new Date().toLocaleTimeString())),
        data && data.item && 'payload' in data.item ? pretty(data.item.payload) : data && data.item && data.item.xml !== undefined ? pretty(data.item.xml) : pretty(data)));
      while (tail.children.length > 200) tail.lastChild.remove();
      if (data && data.item) loadItems().catch(() => {});
    }, (state) => { tailState.textContent = state; if (state.startsWith('ended')) { ctl = null; tailBtn.textContent = 'Start live tail'; } });
  };

  if (can('publish') && info.type !== 'collection') {
    const payload = h('textarea', { id: 'publish-payload', spellcheck: 'false' });
    payload.value = JSON.stringify({ message: 'hello from the console', at: new Date().toISOString() }, null, 2);
    const itemId = h('input', { type: 'text', id: 'publish-id', placeholder: 'generated when empty', autocomplete: 'off' });
    const kind = h('select', { id: 'publish-kind' }, h('option', { value: 'json' }, 'JSON'), h('option', { value: 'xml' }, 'XML'));
    parts.push(h('h2', {}, 'Publish a test item'), h('form', { class: 'stack', 'aria-label': 'Publish', onsubmit: async (e) => {
      e.preventDefault();
      try {
        if (kind.value === 'json') {
          try { JSON.parse(payload.value); } catch (x) { throw new Error('payload: not valid JSON (' + x.message + ')'); }
        }
        /* the body is the payload itself; the item id goes in ?id= */
        const q = itemId.value.trim() ? '?id=' + enc(itemId.value.trim()) : '';
        const type = kind.value === 'xml' ? 'application/xml' : 'application/json';
        const r = await api('POST', base + '/items' + q, payload.value, type);
        toast('Published item ' + r.id);
        loadItems().catch(() => {});
      } catch (x) { toast(x.message, true); }
    } }, h('label', { for: 'publish-kind' }, 'Payload type', kind), h('label', { for: 'publish-payload' }, 'Payload', payload),
    h('label', { for: 'publish-id' }, 'Item id', itemId), h('div', {}, h('button', { type: 'submit' }, 'Publish'))));
  }
  parts.push(h('h2', {}, 'Live tail'), h('div', { class: 'actions' }, tailBtn, tailState), tail);
  parts.push(h('h2', {}, 'Latest items'), items);
  const cfgBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  if (can('read')) parts.push(h('h2', {}, 'Configuration'), cfgBox);
  show(parts);
  await loadItems();
  api('GET', base + '/config').then((c) => cfgBox.replaceChildren(configForm(node, c)))
    .catch((x) => cfgBox.replaceChildren(h('p', { class: 'muted' }, 'Not available: ' + x.message)));
}

/* Reads an event stream with the token in a header; onEvent({id, event, data}) per event. When
 * the stream ends or breaks it is opened again after the gateway's retry delay, resuming with
 * Last-Event-ID, until ctl is aborted (leaving the page, Stop). */
async function follow(path, ctl, onEvent, onState) {
  let last = null, wait = 3000;
  while (!ctl.signal.aborted) {
    try {
      const extra = { Accept: 'text/event-stream' };
      if (last) extra['Last-Event-ID'] = last;
      const r = await fetch(new URL(path, API), { headers: headers(extra), signal: ctl.signal });
      if (!r.ok) {
        const b = await r.json().catch(() => ({}));
        throw new ApiError(r.status, b);
      }
      onState('live');
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = { data: [] };
          for (const line of frame.split('\n')) {
            if (!line || line.startsWith(':')) continue;
            const c = line.indexOf(':');
            const k = c < 0 ? line : line.slice(0, c);
            const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (k === 'data') ev.data.push(v);
            else if (k === 'event') ev.event = v;
            else if (k === 'id') ev.id = last = v;
            else if (k === 'retry' && /^\d+$/.test(v)) wait = Math.min(Number(v), 60000);
          }
          if (ev.data.length) { ev.data = ev.data.join('\n'); onEvent(ev); }
        }
      }
      onState('reconnecting…');
    } catch (x) {
      if (x.name === 'AbortError') return;
      if (x.status === 401 || x.status === 403 || x.status === 404) { onState('ended: ' + x.message); return; }
      onState('reconnecting after: ' + x.message);
    }
    await new Promise((res) => setTimeout(res, wait));
  }
}

/* ---- subscriptions ---- */

function subTarget(s) {
  return s.websub ? h('span', { class: 'wrap' }, h('span', { class: 'tag' }, 'WebSub'), ' ', s.callback) : h('span', { class: 'wrap' }, s.callback);
}

async function subsView(params) {
  const filter = params.get('filter');
  const onlyNode = params.get('node');
  let subs = (await api('GET', 'v1/subscriptions' + (onlyNode ? '?node=' + enc(onlyNode) : ''))).subscriptions;
  if (filter === 'backlog') subs = subs.filter((s) => s.backlog > 0);
  if (filter === 'dead') subs = subs.filter((s) => s.dead_letters > 0);
  const rows = subs.map((s) => h('tr', { 'data-sub': s.id },
    h('td', {}, h('a', { href: '#/subscriptions/' + enc(s.id) }, s.id)),
    h('td', { class: 'wrap' }, s.node),
    h('td', { class: 'wrap hide-narrow' }, subTarget(s)),
    h('td', { class: 'state-' + s.state }, s.state),
    h('td', { class: 'num' }, s.backlog === undefined ? '—' : String(s.backlog)),
    h('td', { class: 'num' + (s.dead_letters ? ' state-bad' : '') }, s.dead_letters === undefined ? '—' : String(s.dead_letters))));
  const title = filter === 'backlog' ? 'Subscriptions with a backlog' : filter === 'dead' ? 'Subscriptions with dead letters' : 'Subscriptions';
  const parts = [h('h1', {}, title + (onlyNode ? ' of ' + onlyNode : ''))];
  if (filter || onlyNode) parts.push(h('p', {}, h('a', { href: '#/subscriptions' }, 'Show all')));
  parts.push(table(['Id', 'Node', { text: 'Callback', cls: 'hide-narrow' }, 'State', { text: 'Backlog', cls: 'num' }, { text: 'Dead', cls: 'num' }], rows, 'No subscriptions.'));
  parts.push(h('h2', {}, 'New webhook subscription'), newSubForm(onlyNode));
  show(parts);
}

function newSubForm(node) {
  const nodeIn = h('input', { type: 'text', id: 'sub-node', required: true, autocomplete: 'off' });
  nodeIn.value = node || '';
  const cb = h('input', { type: 'url', id: 'sub-callback', required: true, placeholder: 'https://example.com/webhook', autocomplete: 'off' });
  const secret = h('input', { type: 'password', id: 'sub-secret', placeholder: 'generated when empty (whsec_…)', autocomplete: 'new-password' });
  const boxes = EVENT_KINDS.map((k) => h('input', { type: 'checkbox', value: k, checked: true, id: 'ev-' + k }));
  const out = h('div', { 'aria-live': 'polite' });
  return h('div', {}, h('form', { class: 'stack', 'aria-label': 'New subscription', onsubmit: async (e) => {
    e.preventDefault();
    const body = { node: nodeIn.value.trim(), callback: cb.value.trim(), events: boxes.filter((b) => b.checked).map((b) => b.value) };
    if (secret.value) body.secret = secret.value;
    try {
      const s = await api('POST', 'v1/subscriptions', body);
      secret.value = '';
      out.replaceChildren(h('div', { class: 'secret', 'data-t': 'created' },
        h('p', {}, 'Created ', h('a', { href: '#/subscriptions/' + enc(s.id) }, s.id), '.'),
        s.secret ? [h('p', {}, 'Its signing secret, shown this once — keep it with the receiver:'), h('pre', { 'data-t': 'secret' }, s.secret)] : h('p', {}, 'It signs with the secret you gave.')));
      toast('Subscription created');
    } catch (x) { toast(x.message, true); out.replaceChildren(h('p', { class: 'error' }, x.message)); }
  } },
  h('label', { for: 'sub-node' }, 'Node', nodeIn), h('label', { for: 'sub-callback' }, 'Callback URL', cb),
  h('fieldset', {}, h('legend', {}, 'Events'), EVENT_KINDS.map((k, i) => h('label', { class: 'check', for: 'ev-' + k }, boxes[i], k))),
  h('label', { for: 'sub-secret' }, 'Secret', secret), h('div', {}, h('button', { type: 'submit' }, 'Create subscription'))), out);
}

async function subView(id) {
  const base = 'v1/subscriptions/' + enc(id);
  const s = await api('GET', base);
  const attempts = h('div', { 'data-t': 'attempts' });
  const dead = h('div', { 'data-t': 'dead-letters' });
  const facts = h('div', { class: 'cards' });
  let older = null;
  const attemptRow = (a) => h('tr', {},
    h('td', {}, when(a.at)), h('td', { class: 'wrap hide-narrow' }, a.event_id), h('td', { class: 'num' }, String(a.attempt)),
    h('td', { class: 'num ' + (a.status >= 200 && a.status < 300 ? 'state-ok' : 'state-bad'), 'data-status': a.status === null ? '' : String(a.status) }, a.status === null ? '—' : String(a.status)),
    h('td', { class: 'num hide-narrow' }, a.duration_ms + ' ms'), h('td', { class: 'wrap' }, a.error || ''),
    h('td', { class: 'wrap' }, a.answer ? h('code', {}, a.answer) : ''));
  const load = async () => {
    const [one, at, dl] = await Promise.all([api('GET', base), api('GET', base + '/attempts?limit=25'), api('GET', base + '/dead-letters')]);
    facts.replaceChildren(
      h('div', { class: 'card' }, h('div', { class: 'k' }, 'State'), h('div', { class: 'v state-' + one.state }, one.state)),
      h('div', { class: 'card' }, h('div', { class: 'k' }, 'Backlog'), h('div', { class: 'v' }, one.backlog === undefined ? 'another replica' : String(one.backlog))),
      h('div', { class: 'card' }, h('div', { class: 'k' }, 'Dead letters'), h('div', { class: 'v' + (one.dead_letters ? ' state-bad' : '') }, String(one.dead_letters || 0))));
    older = at.next;
    attempts.replaceChildren(table(['When', { text: 'Event', cls: 'hide-narrow' }, '#', 'Status', { text: 'Took', cls: 'hide-narrow' }, 'Error', 'Answer'], at.attempts.map(attemptRow), 'No attempts yet.'));
    if (older) attempts.append(h('button', { type: 'button', class: 'quiet', onclick: async (e) => {
      const more = await api('GET', base + '/attempts?limit=25&before=' + enc(older));
      older = more.next;
      attempts.querySelector('tbody').append(...more.attempts.map(attemptRow));
      if (!older) e.target.remove();
    } }, 'Older attempts'));
    const letters = dl.dead_letters;
    dead.replaceChildren(letters.length && can('subscribe') ? h('div', { class: 'actions' }, h('button', { type: 'button', id: 'retry-all', onclick: async () => {
      try { const r = await api('POST', base + '/dead-letters/retry'); toast(`${r.retried} dead letters queued again`); load(); } catch (x) { toast(x.message, true); }
    } }, 'Retry all')) : '',
    table(['Event', 'Attempts', 'Last error', 'Died', ''], letters.map((d) => h('tr', { 'data-letter': d.id },
      h('td', { class: 'wrap' }, d.event_id, d.event ? h('details', {}, h('summary', {}, d.event.type || 'event'), pretty(d.event)) : null),
      h('td', { class: 'num' }, String(d.attempts)), h('td', { class: 'wrap' }, d.last_error || ''), h('td', {}, when(d.created_at)),
      h('td', {}, h('button', { type: 'button', class: 'quiet', 'data-retry': d.id, onclick: async () => {
        try { await api('POST', `${base}/dead-letters/${enc(d.id)}/retry`); toast('Queued again'); load(); } catch (x) { toast(x.message, true); }
      } }, 'Retry')))), 'No dead letters.'));
  };
  const info = [h('p', { class: 'wrap' }, 'Node ', h('a', { href: '#/nodes/' + enc(s.node) }, s.node), ' on ', s.service, ' → ', subTarget(s)),
    h('p', { class: 'muted' }, 'Events: ' + s.events.join(', ') + ' · created ' + when(s.created_at) + (s.batch ? ` · batches of up to ${s.batch.max_events}` : ''))];
  if (s.websub) info.push(h('p', { class: 'muted wrap' }, `WebSub topic ${s.websub.topic}, lease until ${when(s.websub.expires_at)}${s.websub.signed ? ', signed' : ''}`));
  show(h('h1', {}, 'Subscription ' + s.id), info,
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'send-test', onclick: async () => {
        try { const r = await api('POST', base + '/test'); toast('Test event ' + r.event_id + ' queued'); setTimeout(() => load().catch(() => {}), 700); } catch (x) { toast(x.message, true); }
      } }, 'Send a test event'),
      h('button', { type: 'button', class: 'quiet', onclick: () => load().catch((x) => toast(x.message, true)) }, 'Refresh'),
      h('button', { type: 'button', class: 'danger', onclick: async () => {
        if (!(await confirmDialog(`Delete subscription ${s.id}? Its pending deliveries and dead letters go with it.`, 'Delete subscription'))) return;
        try { await api('DELETE', base); toast('Subscription deleted'); location.hash = '#/subscriptions'; } catch (x) { toast(x.message, true); }
      } }, 'Delete')),
    facts, h('h2', {}, 'Delivery attempts'), attempts, h('h2', {}, 'Dead letters'), dead);
  await load();
  every(3000, () => load().catch(() => {}));
}

/* ---- feeds ---- */

async function feedsView() {
  const feeds = (await api('GET', 'v1/feeds')).feeds;
  const url = h('input', { type: 'url', id: 'feed-url', required: true, placeholder: 'https://example.com/feed.xml', autocomplete: 'off' });
  const node = h('input', { type: 'text', id: 'feed-node', required: true, autocomplete: 'off' });
  const every_ = h('input', { type: 'number', id: 'feed-interval', min: 1, max: 86400, value: 900 });
  show(h('h1', {}, 'Feeds'), h('p', { class: 'muted' }, 'RSS, Atom and JSON Feed documents fetched and published into nodes.'),
    table(['Feed', 'Node', { text: 'Every', cls: 'num' }, 'Last fetch', { text: 'Published', cls: 'num' }, 'Error', ''], feeds.map((f) => h('tr', {},
      h('td', { class: 'wrap' }, f.url), h('td', { class: 'wrap' }, h('a', { href: '#/nodes/' + enc(f.node) }, f.node)),
      h('td', { class: 'num' }, f.interval + ' s'), h('td', {}, when(f.state.last_fetch_at) + (f.state.last_status ? ` (${f.state.last_status})` : '')),
      h('td', { class: 'num' }, String(f.state.published)), h('td', { class: 'wrap error' }, f.state.last_error || ''),
      h('td', {}, h('button', { type: 'button', class: 'quiet', onclick: async () => {
        if (!(await confirmDialog(`Stop fetching ${f.url}?`, 'Remove feed'))) return;
        try { await api('DELETE', 'v1/feeds/' + enc(f.id)); toast('Feed removed'); feedsView(); } catch (x) { toast(x.message, true); }
      } }, 'Remove')))), 'No feeds.'),
    h('h2', {}, 'Add a feed'),
    h('form', { class: 'stack', 'aria-label': 'Add a feed', onsubmit: async (e) => {
      e.preventDefault();
      try { await api('POST', 'v1/feeds', { url: url.value.trim(), node: node.value.trim(), interval: Number(every_.value) }); toast('Feed added'); feedsView(); }
      catch (x) { toast(x.message, true); }
    } }, h('label', { for: 'feed-url' }, 'Feed URL', url), h('label', { for: 'feed-node' }, 'Into node', node),
    h('label', { for: 'feed-interval' }, 'Seconds between fetches', every_), h('div', {}, h('button', { type: 'submit' }, 'Add feed'))));
}

/* ---- start ---- */

function applyTheme() {
  const t = localStorage.getItem('pubsubgw.theme') || 'auto';
  if (t === 'auto') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.setAttribute('data-theme', t);
  document.getElementById('theme').textContent = 'Theme: ' + t;
}

document.addEventListener('DOMContentLoaded', () => {
  applyTheme();
  document.getElementById('theme').addEventListener('click', () => {
    const order = ['auto', 'light', 'dark'];
    const t = localStorage.getItem('pubsubgw.theme') || 'auto';
    localStorage.setItem('pubsubgw.theme', order[(order.indexOf(t) + 1) % 3]);
    applyTheme();
  });
  document.getElementById('signout').addEventListener('click', () => signOut('Token forgotten.'));
  window.addEventListener('hashchange', route);
  start().catch((x) => (x.status === 401 ? login() : show(h('h1', {}, 'The gateway did not answer'), h('p', { class: 'error' }, x.message))));
});
