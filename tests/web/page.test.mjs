// The playground in headless Chromium (Debian's `chromium`): load the built page from 127.0.0.1,
// pick the privileged-group sample and see `block` with the rule that caused it, break a field name
// in the policy and see the engine's message with its did-you-mean at the right line, and save
// screenshots to target/web/. Needs `make web` and Chromium (`make test-web` does both).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { CHROMIUM, launch, serve } from './cdp.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SITE = join(ROOT, 'target/web');
const PRIVILEGED_SAMPLE = 'entra-privileged-group-add.json';
const PRIVILEGED_RULE = 'privileged-group-member-add';

let server;
let browser;
let page;

before(async () => {
  assert.ok(existsSync(join(SITE, 'pkg/scimguard_bg.wasm')), 'target/web is not built: run `make web`');
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`make chromium\``);
  server = await serve(SITE);
  browser = await launch();
  page = await browser.newPage();
  await page.send('Runtime.enable');
  await page.send('Page.enable');
  await page.send('Network.enable');
  await page.send('Emulation.setDeviceMetricsOverride', { width: 1600, height: 980, deviceScaleFactor: 1, mobile: false });
  await page.send('Page.navigate', { url: server.url });
  // `ready` is set by app.js once the engine and the samples are loaded ('error' if it failed).
  await page.waitFor("document.readyState === 'complete' && document.body?.dataset.ready", 'the page to start', 20000);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** Exceptions and console errors the page raised so far. */
function pageErrors() {
  return page.events
    .filter((e) => e.method === 'Runtime.exceptionThrown'
      || (e.method === 'Runtime.consoleAPICalled' && ['error', 'warning', 'assert'].includes(e.params.type)))
    .map((e) => JSON.stringify(e.params.exceptionDetails ?? e.params.args));
}

test('the page starts with the default policy and no errors', async () => {
  assert.equal(await page.eval('document.body.dataset.ready'), 'true', pageErrors().join('\n'));
  const status = await page.eval("document.getElementById('policy-status').textContent");
  assert.match(status, /^valid · \d+ rules?$/);
  assert.match(await page.eval("document.getElementById('version').textContent"), /^engine \d+\.\d+\.\d+/);
  assert.deepEqual(pageErrors(), []);
});

/** Picks a sample in the request picker, as a user choosing from the list. */
async function pick(file) {
  await page.eval(`(() => {
    const s = document.getElementById('sample');
    s.focus();
    s.value = ${JSON.stringify(file)};
    s.dispatchEvent(new Event('change', { bubbles: true }));
  })()`);
}

test('picking the Okta PUT sample shows an allowed request and its changes', async () => {
  await pick('okta-put-user.json');
  const shown = await page.waitFor(`(() => {
    const ok = document.getElementById('request').value.includes('"PUT"');
    const d = document.getElementById('decision').textContent;
    return ok ? { d, changes: document.querySelectorAll('#changes tbody tr').length } : null;
  })()`, 'a verdict for the Okta PUT sample');
  assert.equal(shown.d, 'allow');
  assert.ok(shown.changes > 1);
});

test('the privileged-group sample is blocked by the privileged-group rule', async () => {
  await pick(PRIVILEGED_SAMPLE);
  const shown = await page.waitFor(`(() => {
    const d = document.getElementById('decision').textContent;
    const rules = [...document.querySelectorAll('#rules .rule')].map((r) => ({
      id: r.dataset.rule, description: r.querySelector('.rule-desc')?.textContent ?? '' }));
    const changes = document.querySelectorAll('#changes tbody tr').length;
    return document.getElementById('request').value.includes('"Add"') && rules.length ? { d, rules, changes } : null;
  })()`, 'a verdict for the privileged-group sample');
  assert.equal(shown.d, 'block');
  const rule = shown.rules.find((r) => r.id === PRIVILEGED_RULE);
  assert.ok(rule, `rule ${PRIVILEGED_RULE} not shown; shown: ${shown.rules.map((r) => r.id).join(', ')}`);
  assert.ok(rule.description.length > 0, 'the matched rule has no description');
  assert.ok(shown.changes > 0, 'no normalised change shown');
  assert.equal(await page.eval("document.getElementById('stale').hidden"), true);
  writeFileSync(join(SITE, 'playground-block.png'), await page.screenshot());
});

test('a misspelt field shows the engine message and did-you-mean at its line', async () => {
  const { line } = await page.eval(`(() => {
    const t = document.getElementById('policy');
    const at = t.value.indexOf('"attribute"');
    t.focus();
    t.setSelectionRange(at + 3, at + 3); // after "at
    return { line: t.value.slice(0, at).split('\\n').length };
  })()`);
  assert.ok(line > 1, 'the default policy has no "attribute" field to misspell');
  await page.press('Delete', 'Delete', 46); // "attribute" → "atribute", as a user would type it

  const problem = await page.waitFor(`(() => {
    const li = document.querySelector('#policy-errors .problem');
    if (!li || document.getElementById('policy-errors').hidden) return null;
    return {
      line: li.dataset.line,
      message: li.querySelector('.message').textContent,
      help: li.querySelector('.help')?.textContent ?? '',
      gutter: [...document.querySelectorAll('#policy-editor .gutter .err')].map((g) => g.textContent),
      lens: [...document.querySelectorAll('#policy-editor .lens')].map((l) => l.dataset.line),
      status: document.getElementById('policy-status').textContent,
    };
  })()`, 'the policy error');
  assert.ok((await page.eval("document.getElementById('policy').value")).includes('"atribute"'));
  assert.equal(problem.line, String(line), `error shown at line ${problem.line}, the typo is on line ${line}`);
  assert.match(problem.message, /atribute/);
  assert.match(problem.help, /did you mean .*attribute/);
  assert.deepEqual(problem.gutter, [String(line)]);
  assert.deepEqual(problem.lens, [String(line)]);
  assert.match(problem.status, /^1 error$/);
  assert.equal(await page.eval("document.getElementById('stale').hidden"), false);

  // Jump to the error, as a reader would, so the screenshot shows the marked line.
  await page.eval("document.querySelector('#policy-errors .jump').click()");
  await page.waitFor(`document.activeElement === document.getElementById('policy')`, 'the jump to the error');
  writeFileSync(join(SITE, 'playground.png'), await page.screenshot());
});

test('the page asked for nothing outside its own origin and logged no error', () => {
  const outside = page.events
    .filter((e) => e.method === 'Network.requestWillBeSent')
    .map((e) => e.params.request.url)
    .filter((u) => !u.startsWith(server.url) && !u.startsWith('data:'));
  assert.deepEqual(outside, []);
  assert.ok(server.requests.includes('/pkg/scimguard_bg.wasm'));
  assert.deepEqual(pageErrors(), []);
});
