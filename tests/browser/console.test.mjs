// The console in a real browser: Debian's Chromium, headless, driven through the DevTools
// protocol by puppeteer-core, against a gateway on the test Prosody and a webhook receiver of
// this script's own that fails until it is told not to. Screenshots go to ARTIFACTS.
//
// Environment: PUBSUBGW_BIN, PUBSUBGW_TEST_XMPP (the server's directory, holding "port"),
// BROWSER_TOOLS (where puppeteer-core is installed), ARTIFACTS, CHROMIUM (default
// /usr/bin/chromium).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(path.join(process.env.BROWSER_TOOLS, 'node_modules') + '/');
const puppeteer = require('puppeteer-core');

const ART = process.env.ARTIFACTS;
fs.mkdirSync(ART, { recursive: true });
const TOKEN = 'console-test-token-admin-0001';
const READ_TOKEN = 'console-test-token-read-0002';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let checks = 0;
function check(cond, what) {
  if (!cond) throw new Error('FAILED: ' + what);
  checks++;
  console.log('ok ' + checks + ' - ' + what);
}

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise((r) => s.close(r));
  return p;
}

/* ---- the webhook receiver: 500 while failing, else 200; keeps what it got ---- */
const received = [];
let failing = true;
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    if (req.method !== 'POST') { res.writeHead(200); res.end(); return; }
    if (failing) { res.writeHead(500, { 'Content-Type': 'text/plain' }); res.end('receiver down for maintenance'); return; }
    received.push({ headers: req.headers, body });
    res.writeHead(204);
    res.end();
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const CALLBACK = `http://127.0.0.1:${receiver.address().port}/hook`;

/* ---- gateways ---- */
const xmppPort = fs.readFileSync(path.join(process.env.PUBSUBGW_TEST_XMPP, 'port'), 'utf8').trim();
const gateways = [];
async function startGateway(extra, xmpp) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pubsubgw-console-'));
  const log = fs.openSync(path.join(dir, 'gateway.log'), 'a');
  const args = ['--jid', 'gw20@localhost', '--xmpp-server', xmpp || `127.0.0.1:${xmppPort}`, '--tls', 'off',
    '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(dir, 'data'), '--log-level', 'debug',
    '--callback-allow', '127.0.0.0/8', '--retry-attempts', '2', '--retry-initial', '200', ...extra];
  /* PUBSUBGW_VALGRIND=1 (scripts/test.sh --valgrind): under memcheck, as the integration tests */
  const vg = process.env.PUBSUBGW_VALGRIND === '1'
    ? ['valgrind', '--quiet', '--error-exitcode=99', '--leak-check=full', '--show-leak-kinds=definite,indirect',
      '--errors-for-leak-kinds=definite,indirect', '--suppressions=' + path.join(HERE, '..', 'valgrind.supp')] : [];
  const cmd = [...vg, process.env.PUBSUBGW_BIN, ...args];
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', log, log], env: { ...process.env, PUBSUBGW_XMPP_PASSWORD: 'gw20' } });
  child.exited = new Promise((r) => child.on('exit', (code, sig) => r(sig ? sig : code)));
  const g = { child, dir, base: `http://127.0.0.1:${port}` };
  gateways.push(g);
  for (let i = 0; i < (vg.length ? 600 : 150); i++) {
    try {
      const r = await fetch(g.base + '/v1/health');
      if (r.status === 200 || (xmpp && r.status === 503)) return g;
    } catch (e) { /* not listening yet */ }
    await sleep(100);
  }
  throw new Error('the gateway did not come up; see ' + dir + '/gateway.log');
}

function stopAll() {
  for (const g of gateways) if (g.child.exitCode === null) g.child.kill('SIGTERM');
  receiver.close();
}

let browser, pageErrors = [];
async function main() {
  const gw = await startGateway(['--api-token', `${TOKEN} name=admin`,
    '--api-token', `${READ_TOKEN} name=viewer scopes=read nodes=console-*`]);
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  watch(page);
  const shot = async (name) => {
    await page.$eval('#toast', (t) => t.replaceChildren()); /* passing notices hide the page */
    await page.screenshot({ path: path.join(ART, name + '.png'), fullPage: true });
  };
  const text = (sel) => page.$eval(sel, (e) => e.textContent);
  const waitText = (sel, want, timeout = 15000) => page.waitForFunction(
    (s, w) => { const e = document.querySelector(s); return e && e.textContent.includes(w); }, { timeout }, sel, want);

  /* the console is compiled in and served with a strict policy */
  const resp = await page.goto(gw.base + '/ui/', { waitUntil: 'networkidle0' });
  const csp = resp.headers()['content-security-policy'] || '';
  check(resp.status() === 200 && csp.includes("default-src 'self'") && csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'),
    'GET /ui/ answers 200 with a strict Content-Security-Policy');
  check(await page.$$eval('script:not([src])', (s) => s.length) === 0, 'no inline script');
  check(await page.evaluate(() => [...document.querySelectorAll('script,link')].every((e) => (e.src || e.href || '').startsWith(location.origin))),
    'every script and stylesheet comes from the gateway itself');

  /* the token: a wrong one is refused, the right one is kept in this tab's session storage */
  await page.waitForSelector('#token');
  await page.type('#token', 'not-a-valid-token-at-all');
  await page.keyboard.press('Enter');
  await waitText('.login .error', 'not valid');
  check(true, 'a wrong token is refused on the sign-in form');
  await page.$eval('#token', (e) => (e.value = ''));
  await page.type('#token', TOKEN);
  await page.keyboard.press('Enter');
  await waitText('[data-t=xmpp]', 'connected');
  check(await page.evaluate((t) => sessionStorage.getItem('pubsubgw.token') === t && !Object.values(localStorage).includes(t), TOKEN),
    'the token is in session storage only');
  check((await text('#who')).includes('admin'), 'the header names the token and its scopes');
  await shot('overview');

  /* keyboard: Tab reaches the navigation, Enter follows it */
  await page.evaluate(() => document.activeElement.blur());
  let reached = false;
  for (let i = 0; i < 12 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement && document.activeElement.getAttribute('href') === '#/nodes');
  }
  check(reached, 'Tab reaches the Nodes link');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#new-node');
  check(await page.evaluate(() => location.hash === '#/nodes'), 'Enter on it opens the node list');

  /* create a node */
  const node = 'console-' + Date.now().toString(36);
  await page.type('#new-node', node);
  await page.click('form[aria-label="Create a node"] button[type=submit]');
  await page.waitForSelector('#tail-toggle');
  check((await text('h1')) === node, 'the new node has its page');

  /* live tail, then publish: the item arrives in the tail, its payload shown as text */
  await page.click('#tail-toggle');
  await page.waitForFunction(() => document.querySelector('#tail-toggle').nextElementSibling.textContent === 'live', { timeout: 15000 });
  const hostile = { message: 'hello <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>', n: 1 };
  await page.$eval('#publish-payload', (e, v) => (e.value = v), JSON.stringify(hostile));
  await page.type('#publish-id', 'first-item');
  await page.click('form[aria-label="Publish"] button[type=submit]');
  await waitText('[data-t=tail]', 'first-item');
  check(true, 'the published item arrives in the live tail');
  check(await page.evaluate(() => window.__pwned === undefined && document.querySelectorAll('main img, main script').length === 0),
    'markup in a payload is shown as text, never run');
  check((await text('[data-t=tail]')).includes('<img src=x'), 'the payload text is shown as it is');
  await waitText('[data-t=items]', 'first-item');
  check(true, 'the item is listed among the latest items');
  await page.waitForSelector('form[aria-label="Configuration"]', { timeout: 15000 });
  check(await page.$$eval('form[aria-label="Configuration"] label', (l) => l.length) > 3, 'the configuration form has the service\'s fields');
  await shot('node');

  /* a subscription to a receiver that fails: the secret is shown once */
  await page.goto(gw.base + '/ui/#/subscriptions?node=' + encodeURIComponent(node));
  await page.waitForSelector('#sub-callback');
  await page.type('#sub-callback', CALLBACK);
  await page.click('form[aria-label="New subscription"] button[type=submit]');
  await page.waitForSelector('[data-t=secret]');
  const secret = (await text('[data-t=secret]')).trim();
  check(/^whsec_/.test(secret), 'the generated secret is shown once on creation');
  const subId = await page.$eval('[data-t=created] a', (a) => decodeURIComponent(a.getAttribute('href').split('/').pop()));
  await page.click('[data-t=created] a');
  await page.waitForSelector('#send-test');
  check(!(await page.content()).includes(secret), 'the subscription page never shows the secret');

  /* an event to the failing receiver: attempts with 500, then a dead letter */
  let r = await fetch(`${gw.base}/v1/nodes/${encodeURIComponent(node)}/items?id=second-item`, {
    method: 'POST', headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
    body: JSON.stringify({ n: 2 }) });
  check(r.status === 201, 'an item published through the API is acknowledged');
  await page.waitForSelector('[data-t=attempts] td[data-status="500"]', { timeout: 20000 });
  check((await text('[data-t=attempts]')).includes('receiver down for maintenance'), 'the failed attempt shows the status and the first bytes of the answer');
  await page.waitForSelector('[data-t=dead-letters] [data-retry]', { timeout: 20000 });
  check(true, 'the event became a dead letter');
  await shot('subscription-failed');

  /* fix the receiver, retry the dead letter: delivered */
  failing = false;
  await page.click('[data-t=dead-letters] [data-retry]');
  await page.waitForSelector('[data-t=attempts] td[data-status="204"]', { timeout: 20000 });
  await waitText('[data-t=dead-letters]', 'No dead letters.');
  const got = received.map((x) => JSON.parse(x.body));
  check(got.some((e) => e.item && e.item.id === 'second-item'), 'the retried dead letter reached the receiver');
  const d = received.find((x) => JSON.parse(x.body).item.id === 'second-item');
  const key = Buffer.from(secret.slice(6), 'base64');
  const sig = createHmac('sha256', key).update(`${d.headers['webhook-id']}.${d.headers['webhook-timestamp']}.${d.body}`).digest('base64');
  check(d.headers['webhook-signature'].split(' ').includes('v1,' + sig), 'it is signed with the secret shown at creation');
  await shot('subscription-delivered');

  /* send a test event */
  await page.click('#send-test');
  for (let i = 0; i < 100 && !received.some((x) => JSON.parse(x.body).test === true); i++) await sleep(100);
  check(received.some((x) => { const e = JSON.parse(x.body); return e.test === true && e.item.payload.subscription === subId; }),
    'a test event reaches the receiver, marked as a test');

  /* retry all */
  failing = true;
  for (const id of ['third-item', 'fourth-item'])
    await fetch(`${gw.base}/v1/nodes/${encodeURIComponent(node)}/items?id=${id}`, {
      method: 'POST', headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ id }) });
  await page.waitForFunction(() => document.querySelectorAll('[data-t=dead-letters] [data-retry]').length === 2, { timeout: 20000 });
  failing = false;
  await page.click('#retry-all');
  await waitText('[data-t=dead-letters]', 'No dead letters.', 20000);
  for (let i = 0; i < 100 && received.filter((x) => ['third-item', 'fourth-item'].includes(JSON.parse(x.body).item.id)).length < 2; i++) await sleep(100);
  check(received.filter((x) => ['third-item', 'fourth-item'].includes(JSON.parse(x.body).item.id)).length === 2, 'Retry all delivers every dead letter');

  /* the overview counts and links */
  await page.goto(gw.base + '/ui/#/overview');
  await page.waitForSelector('[data-t=dead] a');
  check((await text('[data-t=dead]')).includes('0'), 'the overview counts dead letters, with a link');

  /* 360 px wide: nothing runs off the side; and dark */
  await page.setViewport({ width: 360, height: 740 });
  await page.goto(gw.base + '/ui/#/subscriptions/' + encodeURIComponent(subId));
  await page.waitForSelector('[data-t=attempts] table');
  check(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'readable at 360 px: no sideways scrolling of the page');
  await shot('narrow');
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
  await page.setViewport({ width: 1280, height: 860 });
  await page.goto(gw.base + '/ui/#/nodes/' + encodeURIComponent(node));
  await page.waitForSelector('[data-t=items] .ev');
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const lum = bg.match(/\d+/g).slice(0, 3).map(Number).reduce((a, b) => a + b, 0);
  check(lum < 150, 'dark when the system asks for it (' + bg + ')');
  await shot('node-dark');

  /* retract an item from its node, after a confirmation; the live tail shows it */
  await page.click('#tail-toggle');
  await page.waitForFunction(() => document.querySelector('#tail-toggle').nextElementSibling.textContent === 'live', { timeout: 15000 });
  await page.click('[data-retract="first-item"]');
  await page.waitForSelector('dialog [data-confirm]');
  await page.click('dialog [data-confirm]');
  await waitText('[data-t=tail]', 'item.retracted');
  await page.waitForFunction(() => !document.querySelector('[data-t=items] [data-item="first-item"]'), { timeout: 15000 });
  check(true, 'an item retracted from the console leaves the node, and the tail shows it');

  /* delete the node, with confirmation (Cancel first) */
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
  await page.click('button.danger');
  await page.waitForSelector('dialog [data-cancel]');
  await page.keyboard.press('Escape');
  await sleep(200);
  check((await page.$('dialog')) === null && (await text('h1')) === node, 'Escape cancels the confirmation and nothing is deleted');

  /* a read-only token limited to some nodes: the console offers only what it may do */
  const ctx = await browser.createBrowserContext();
  const viewer = await signedIn(ctx, gw.base, READ_TOKEN, false);
  const navs = await viewer.$$eval('#nav a', (as) => as.filter((a) => !a.hidden).map((a) => a.textContent));
  check(JSON.stringify(navs) === JSON.stringify(['Overview', 'Nodes']), 'a read token sees no Subscriptions or Feeds (' + navs.join(', ') + ')');
  await viewer.goto(gw.base + '/ui/#/nodes/' + encodeURIComponent(node));
  await viewer.waitForSelector('[data-t=items] .ev');
  check((await viewer.$('button.danger')) === null && (await viewer.$('#publish-payload')) === null && (await viewer.$('#new-node')) === null,
    'a read token is offered no delete, purge or publish');
  check((await viewer.$('[data-retract]')) === null, 'nor retraction');
  await viewer.goto(gw.base + '/ui/#/nodes');
  await viewer.waitForSelector('#node-search');
  check(!(await viewer.$('#new-node')), 'nor node creation');
  await ctx.close();

  /* accessibility, checked by axe-core (WCAG 2 A and AA rules) on every view, light and dark.
   * axe is injected as a script, which the console's own policy forbids: this page alone
   * bypasses it. */
  const axeCtx = await browser.createBrowserContext();
  const ax = await signedIn(axeCtx, gw.base, TOKEN, true);
  const axePath = require.resolve('axe-core/axe.min.js');
  for (const scheme of ['light', 'dark']) {
    await ax.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
    for (const [view, ready] of [['#/overview', '[data-t=pending]'], ['#/nodes', '#node-search'],
      ['#/nodes/' + encodeURIComponent(node), '[data-t=items] .ev'], ['#/subscriptions', '#sub-callback'],
      ['#/subscriptions/' + encodeURIComponent(subId), '[data-t=attempts] table'], ['#/feeds', '#feed-url']]) {
      await ax.goto(gw.base + '/ui/' + view);
      await ax.waitForSelector(ready);
      await sleep(300);
      if (!(await ax.evaluate(() => typeof window.axe !== 'undefined'))) await ax.addScriptTag({ path: axePath });
      const found = await ax.evaluate(async () => {
        const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
        return r.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
      });
      check(found.length === 0, `axe: no WCAG 2 A/AA violation on ${view} (${scheme})` + (found.length ? ': ' + found.join(' | ') : ''));
    }
  }
  await axeCtx.close();

  /* now delete the node for real */
  await page.bringToFront();
  await page.click('button.danger');
  await page.waitForSelector('dialog [data-confirm]');
  await page.click('dialog [data-confirm]');
  await page.waitForFunction(() => location.hash === '#/nodes', { timeout: 15000 });
  r = await fetch(`${gw.base}/v1/nodes/${encodeURIComponent(node)}`, { headers: { Authorization: 'Bearer ' + TOKEN } });
  check(r.status === 404, 'the confirmed delete removed the node');

  /* --ui off */
  const off = await startGateway(['--ui', 'off', '--api-token', `${TOKEN} name=admin`], '127.0.0.1:1');
  r = await fetch(off.base + '/ui/');
  check(r.status === 404 && (await r.json()).detail.includes('--ui off'), '--ui off: /ui/ answers 404');
  check(pageErrors.length === 0, 'no script errors or policy violations in the browser' + (pageErrors.length ? ': ' + pageErrors.join(' | ') : ''));

  /* the gateways stop cleanly (and, under valgrind, without errors or leaks) */
  await browser.close();
  browser = null;
  for (const g of gateways) {
    g.child.kill('SIGTERM');
    const code = await Promise.race([g.child.exited, sleep(30000).then(() => 'timeout')]);
    check(code === 0, 'a gateway exits with status 0 on SIGTERM (' + code + ')');
  }
}

/* A page of its own browser context (its own session storage), signed in with token. */
async function signedIn(ctx, base, token, bypassCSP) {
  const p = await ctx.newPage();
  watch(p);
  if (bypassCSP) await p.setBypassCSP(true);
  await p.setViewport({ width: 1280, height: 860 });
  await p.goto(base + '/ui/');
  await p.waitForSelector('#token');
  await p.type('#token', token);
  await p.keyboard.press('Enter');
  await p.waitForSelector('[data-t=xmpp]');
  return p;
}

function watch(page) {
  page.on('pageerror', (e) => pageErrors.push('pageerror: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (401|404)/.test(m.text())) pageErrors.push('console: ' + m.text());
  });
}

let status = 0;
try {
  await main();
  console.log(`all ${checks} checks passed; screenshots in ${ART}`);
} catch (e) {
  status = 1;
  console.error(e.stack || e.message);
  try {
    const pages = browser ? await browser.pages() : [];
    const last = pages[pages.length - 1];
    if (last) await Promise.race([last.screenshot({ path: path.join(ART, 'failure.png'), fullPage: true }), sleep(10000)]);
  } catch (x) { /* no screenshot */ }
  for (const g of gateways) {
    const log = path.join(g.dir, 'gateway.log');
    if (fs.existsSync(log)) console.error('--- ' + log + ' (last lines)\n' + fs.readFileSync(log, 'utf8').split('\n').slice(-40).join('\n'));
  }
} finally {
  if (browser) await Promise.race([browser.close().catch(() => {}), sleep(10000)]);
  stopAll();
}
process.exit(status);
