// The playground page: two JSON editors and a verdict pane over the engine's wasm-bindgen API.
//
// Owns: presentation only (editors with line numbers and error marks, the sample picker, rendering
// the engine's JSON). Does not own: any judgement. Every decision, rule match, change, event and
// error message shown here comes from the engine (`validate`, `explain`, `evaluate`), the same code
// the Envoy filter and `scimguard eval` run.

import init, { validate, explain, evaluate, version } from './pkg/scimguard.js';

const DEBOUNCE_MS = 120;
const MAX_VALUE_CHARS = 160;

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// Editors: a textarea over a layer of marks, beside a gutter of line numbers.

/** Wraps an `.editor` element; `marks` are `{line, message, help}` (1-based lines). */
function makeEditor(root) {
  const textarea = root.querySelector('textarea');
  const gutter = root.querySelector('.gutter-inner');
  const layer = root.querySelector('.marks');
  const lensLayer = root.querySelector('.lenses');
  let marks = [];
  let lenses = [];
  let lineCount = 0;

  const metrics = () => {
    const style = getComputedStyle(textarea);
    const probe = document.createElement('span');
    probe.textContent = 'M'.repeat(20);
    probe.style.cssText = `font:${style.font};position:absolute;visibility:hidden;white-space:pre`;
    document.body.append(probe);
    const charWidth = probe.getBoundingClientRect().width / 20;
    probe.remove();
    return {
      lineHeight: parseFloat(style.lineHeight),
      padTop: parseFloat(style.paddingTop),
      padLeft: parseFloat(style.paddingLeft),
      charWidth,
      tabSize: parseInt(style.tabSize, 10) || 8,
    };
  };

  function renderGutter() {
    const lines = textarea.value.split('\n');
    const byLine = new Map(marks.map((m) => [m.line, m]));
    if (lines.length !== lineCount || marks.length || gutter.querySelector('.err')) {
      lineCount = lines.length;
      const frag = document.createDocumentFragment();
      for (let i = 1; i <= lineCount; i += 1) {
        const n = document.createElement('div');
        n.textContent = String(i);
        if (byLine.has(i)) {
          n.className = 'err';
          n.title = byLine.get(i).message;
        }
        frag.append(n);
      }
      gutter.replaceChildren(frag);
    }
    return lines;
  }

  // Bands scroll with the text; lenses (the message at the end of a marked line) scroll only
  // vertically and stay inside the visible width, so a long line still shows its message.
  function renderMarks(lines) {
    const m = metrics();
    const bands = document.createDocumentFragment();
    const seen = new Set();
    lenses = [];
    for (const mark of marks) {
      if (seen.has(mark.line)) continue; // one lens per line; the list below has them all
      seen.add(mark.line);
      const text = lines[mark.line - 1] ?? '';
      const columns = [...text].reduce((c, ch) => (ch === '\t' ? c + m.tabSize - (c % m.tabSize) : c + 1), 0);
      const top = m.padTop + (mark.line - 1) * m.lineHeight;
      bands.append(el('div', { class: 'band', style: `top:${top}px;height:${m.lineHeight}px` }));
      const lens = el('div', { class: 'lens', 'data-line': String(mark.line), title: mark.message },
        mark.help ? `${mark.message} — ${mark.help}` : mark.message);
      lens.style.top = `${top}px`;
      lenses.push({ lens, end: m.padLeft + (columns + 2) * m.charWidth });
    }
    layer.replaceChildren(bands);
    lensLayer.replaceChildren(...lenses.map((l) => l.lens));
  }

  function placeLenses() {
    const room = textarea.clientWidth;
    for (const { lens, end } of lenses) {
      // After the line's text when it fits; otherwise at the right edge, over at most half the line.
      const fits = end - textarea.scrollLeft + lens.offsetWidth + 6 <= room;
      lens.classList.toggle('pinned', !fits);
      lens.style.left = fits ? `${Math.max(6, end - textarea.scrollLeft)}px` : '';
    }
  }

  function sync() {
    gutter.style.transform = `translateY(${-textarea.scrollTop}px)`;
    layer.style.transform = `translate(${-textarea.scrollLeft}px, ${-textarea.scrollTop}px)`;
    lensLayer.style.transform = `translateY(${-textarea.scrollTop}px)`;
    placeLenses();
  }

  function refresh() {
    renderMarks(renderGutter());
    sync();
  }

  textarea.addEventListener('scroll', sync);
  textarea.addEventListener('input', refresh);
  new ResizeObserver(refresh).observe(textarea);

  return {
    textarea,
    get value() { return textarea.value; },
    set value(v) { textarea.value = v; textarea.scrollTop = 0; textarea.scrollLeft = 0; refresh(); },
    setMarks(next) { marks = next; refresh(); },
    /**
     * Puts the caret on `line` (at `"token"` when the line has it: the last segment of the
     * error's JSON pointer, so a long line scrolls to the offending key) and scrolls it into view.
     */
    reveal(line, token) {
      const lines = textarea.value.split('\n');
      const text = lines[line - 1] ?? '';
      const at = token ? Math.max(0, text.indexOf(`"${token}"`)) : 0;
      const offset = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0) + at;
      textarea.focus({ preventScroll: true });
      textarea.setSelectionRange(offset, offset);
      const { lineHeight, charWidth } = metrics();
      textarea.scrollTop = Math.max(0, (line - 4) * lineHeight);
      textarea.scrollLeft = Math.max(0, at * charWidth - textarea.clientWidth / 5);
      sync();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Rendering helpers.

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'style') node.style.cssText = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** Renders `text`, with each `backticked` span as inline code (the engine's message convention). */
function richText(text) {
  const frag = document.createDocumentFragment();
  text.split(/(`[^`]*`)/).forEach((part) => {
    if (part.startsWith('`') && part.endsWith('`') && part.length >= 2) frag.append(el('code', {}, part.slice(1, -1)));
    else if (part) frag.append(part);
  });
  return frag;
}

function truncate(s) {
  return s.length > MAX_VALUE_CHARS ? `${s.slice(0, MAX_VALUE_CHARS - 1)}…` : s;
}

/** The last reference token of an RFC 6901 JSON pointer (`/rules/2/when/atribute` → `atribute`). */
function lastSegment(pointer) {
  if (!pointer) return undefined;
  return pointer.slice(pointer.lastIndexOf('/') + 1).replaceAll('~1', '/').replaceAll('~0', '~');
}

/** `line N` in a serde_json message (`expected value at line 3 column 5`). */
function lineOf(message) {
  const m = /line (\d+)/.exec(message);
  return m ? Number(m[1]) : null;
}

function showProblems(list, editor, problems) {
  list.replaceChildren(...problems.map((p) => {
    const where = p.line
      ? el('button', { type: 'button', class: 'jump', title: `Go to line ${p.line}`, onclick: () => editor.reveal(p.line, lastSegment(p.pointer)) }, `Ln ${p.line}`)
      : el('span', { class: 'jump none' }, '—');
    return el('li', { class: 'problem', 'data-line': String(p.line ?? '') },
      where,
      el('div', { class: 'what' },
        el('div', { class: 'message' }, richText(p.message)),
        p.help ? el('div', { class: 'help' }, richText(p.help)) : null,
        el('div', { class: 'where' },
          p.rule ? el('span', {}, 'rule ', el('code', {}, p.rule)) : null,
          p.pointer !== undefined ? el('span', {}, 'at ', el('code', {}, p.pointer || '/')) : null)));
  }));
  list.hidden = problems.length === 0;
}

function renderExplanation(x, raw) {
  const r = x.result;
  const decision = $('decision');
  decision.textContent = r.decision;
  decision.dataset.decision = r.decision;
  const risk = $('risk');
  risk.textContent = r.risk;
  risk.dataset.risk = r.risk;
  $('actor').textContent = x.actor ?? '—';
  $('reply').replaceChildren(x.reply
    ? el('span', {}, el('strong', {}, String(x.reply.status)), ' ', detailOf(x.reply.body))
    : 'forwarded upstream');

  $('error-block').hidden = !r.error;
  if (r.error) {
    $('error-detail').replaceChildren(
      el('strong', {}, String(r.error.status)), ' ',
      r.error.scimType ? el('code', {}, r.error.scimType) : null, ' ',
      richText(r.error.detail ?? ''));
  }

  $('rules-count').textContent = String(x.matches.length);
  $('rules-empty').hidden = x.matches.length > 0;
  $('rules').replaceChildren(...x.matches.map((m) => {
    const wouldBlock = m.action === 'block' && m.mode === 'monitor';
    return el('li', { class: 'rule', 'data-rule': m.id, 'data-action': m.action },
      el('div', { class: 'rule-head' },
        el('code', { class: 'rule-id' }, m.id),
        el('span', { class: 'sev', 'data-risk': m.severity }, m.severity),
        el('span', { class: 'act', 'data-action': m.action }, wouldBlock ? 'would block (monitor)' : m.action),
        m.notify ? el('span', { class: 'notify', title: 'asks for a high-risk notification' }, 'notify') : null),
      m.description ? el('p', { class: 'rule-desc' }, richText(m.description)) : null);
  }));

  $('events-count').textContent = String(r.events.length);
  $('events-empty').hidden = r.events.length > 0;
  $('events').replaceChildren(...r.events.map((e) => el('li', { class: 'chip event' }, e)));

  $('changes-count').textContent = String(r.changes.length);
  $('changes-empty').hidden = r.changes.length > 0;
  $('changes').hidden = r.changes.length === 0;
  $('changes').tBodies[0].replaceChildren(...r.changes.map((c, i) => el('tr', {},
    el('td', { class: 'num' }, String(i + 1)),
    el('td', {}, el('span', { class: 'rt' }, c.resource_type),
      c.resource_id ? el('code', { class: 'rid' }, c.resource_id) : null,
      c.bulk_id ? el('span', { class: 'bulk' }, `bulkId ${c.bulk_id}`) : null),
    el('td', {}, el('span', { class: 'op', 'data-op': c.op }, c.op)),
    el('td', {}, el('code', {}, c.attribute + (c.sub_attribute ? `.${c.sub_attribute}` : '')),
      c.filter ? el('div', { class: 'filter' }, `[${c.filter}]`) : null),
    el('td', { class: 'values' }, ...(c.values.length
      ? c.values.map((v) => el('code', { class: 'value' }, truncate(JSON.stringify(v))))
      : [el('span', { class: 'muted' }, '—')])),
    el('td', {}, ...(c.flags ?? []).map((f) => el('span', { class: 'chip flag' }, f))))));

  $('raw').textContent = raw;
}

/** The `detail` of a SCIM error body, or the body itself. */
function detailOf(body) {
  try { return richText(JSON.parse(body).detail ?? body); } catch { return body; }
}

// ---------------------------------------------------------------------------------------------
// The page.

async function main() {
  const [, policyText, samples] = await Promise.all([
    init(),
    fetch('default-policy.json').then((r) => r.text()),
    fetch('samples/index.json').then((r) => r.json()),
  ]);
  $('version').textContent = `engine ${version()}`;

  const policy = makeEditor($('policy-editor'));
  const request = makeEditor($('request-editor'));
  const facts = makeEditor($('facts-editor'));
  const picker = $('sample');
  const sampleText = new Map();

  for (const s of samples) {
    picker.append(el('option', { value: s.file }, s.title));
  }

  async function loadSample(file) {
    if (!sampleText.has(file)) sampleText.set(file, await fetch(`samples/${file}`).then((r) => r.text()));
    const sample = samples.find((s) => s.file === file);
    request.value = sampleText.get(file);
    facts.value = sample?.facts ? `${JSON.stringify(sample.facts, null, 2)}\n` : '';
    $('sample-note').replaceChildren(richText(sample?.note ?? ''));
    picker.value = file;
    update();
  }

  function update() {
    const checked = JSON.parse(validate(policy.value));
    const policyProblems = checked.ok ? [] : checked.errors;
    policy.setMarks(policyProblems.filter((e) => e.line));
    showProblems($('policy-errors'), policy, policyProblems);
    $('policy-status').textContent = checked.ok
      ? `valid · ${checked.rules} rule${checked.rules === 1 ? '' : 's'}`
      : `${policyProblems.length} error${policyProblems.length === 1 ? '' : 's'}`;
    $('policy-status').dataset.ok = String(checked.ok);

    // The engine names what it could not read: the request, or the host facts.
    let requestProblems = [];
    let factsProblems = [];
    if (checked.ok) {
      const hostFacts = facts.value.trim() ? facts.value : undefined;
      try {
        renderExplanation(
          JSON.parse(explain(policy.value, request.value, hostFacts)),
          evaluate(policy.value, request.value, hostFacts),
        );
      } catch (e) {
        const message = String(e.message ?? e);
        const problem = [{ line: lineOf(message), message }];
        if (message.startsWith('not host facts')) factsProblems = problem;
        else requestProblems = problem;
      }
    }
    request.setMarks(requestProblems.filter((p) => p.line));
    showProblems($('request-errors'), request, requestProblems);
    facts.setMarks(factsProblems.filter((p) => p.line));
    showProblems($('facts-errors'), facts, factsProblems);
    const stale = !checked.ok || requestProblems.length > 0 || factsProblems.length > 0;
    $('stale').hidden = !stale;
    $('result').classList.toggle('is-stale', stale);
  }

  let timer = 0;
  const later = () => { clearTimeout(timer); timer = setTimeout(update, DEBOUNCE_MS); };
  policy.textarea.addEventListener('input', later);
  request.textarea.addEventListener('input', later);
  facts.textarea.addEventListener('input', later);
  picker.addEventListener('change', () => loadSample(picker.value));

  const format = (editor) => {
    try { editor.value = `${JSON.stringify(JSON.parse(editor.value), null, 2)}\n`; update(); } catch { /* the marks already say why */ }
  };
  $('policy-format').addEventListener('click', () => format(policy));
  $('request-format').addEventListener('click', () => format(request));
  $('policy-reset').addEventListener('click', () => { policy.value = policyText; update(); });

  policy.value = policyText;
  await loadSample(samples[0].file);
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  document.body.dataset.ready = 'error';
  $('policy-status').textContent = `the playground could not start: ${e.message ?? e}`;
  throw e;
});
