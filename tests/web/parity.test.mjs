// The Node package gives the native engine's answers: every shared test case, every playground
// sample and a set of broken policies go through `target/node` (wasm) and `scimguard` (native),
// and the outputs must be identical byte for byte; each case file also goes through both case
// runners (`run_cases`, `scimguard test`, which apply the cases' host facts) with the same verdicts.
//
// Needs `make web cli` first (`make test-web` does it). SCIMGUARD_BIN overrides the native binary.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.SCIMGUARD_BIN ?? join(ROOT, 'target/release/scimguard');
const wasm = createRequire(import.meta.url)(join(ROOT, 'target/node/scimguard.js'));

/** Every file under `dir` whose name ends with `suffix`, sorted. */
function walk(dir, suffix) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith(suffix))
    .map((d) => join(d.parentPath ?? d.path, d.name))
    .sort();
}

/** The shared case files under `policies/` and `tests/cases/`, as `scimguard test` finds them. */
function caseFiles() {
  return ['policies', 'tests/cases'].flatMap((dir) => {
    const r = native(['test', '--list', join(ROOT, dir)], '');
    assert.equal(r.status, 0, `scimguard test --list ${dir}: ${r.stderr}`);
    return r.stdout.split('\n').filter(Boolean);
  });
}

function native(args, input) {
  const r = spawnSync(BIN, args, { input, encoding: 'utf8' });
  if (r.error) throw r.error;
  return r;
}

/** The wasm result for one request, or `{thrown}` where the package throws. */
function wasmEval(policy, request) {
  try {
    return { out: wasm.evaluate(policy, request) };
  } catch (e) {
    return { thrown: String(e.message ?? e) };
  }
}

/**
 * Evaluates `request` (JSON text) under the policy file at `policyPath` both ways. Both engines get
 * the same bytes; the CLI prints one line, or exits 1 naming a request it cannot read, in which
 * case the package must throw.
 */
function assertSameEval(policyPath, request, label) {
  const policy = readFileSync(policyPath, 'utf8');
  const n = native(['eval', '--policy', policyPath], request);
  const w = wasmEval(policy, request);
  if (n.status === 0) {
    assert.equal(w.thrown, undefined, `${label}: native answered, wasm threw ${w.thrown}`);
    assert.equal(w.out, n.stdout.replace(/\n$/, ''), `${label}: wasm and native differ`);
  } else {
    assert.ok(w.thrown, `${label}: native failed (${n.stderr.trim()}), wasm answered ${w.out}`);
  }
}

function assertSameValidate(policyPath, text, label) {
  const n = native(['validate', '--json', '-'], text);
  const w = JSON.parse(wasm.validate(text));
  if (n.status === 0) {
    assert.equal(w.ok, true, `${label}: native accepts, wasm reports ${JSON.stringify(w.errors)}`);
    assert.match(n.stdout, new RegExp(`\\(${w.rules} rules?\\)`), `${label}: rule counts differ`);
  } else {
    assert.equal(w.ok, false, `${label}: native rejects (${n.stdout || n.stderr}), wasm accepts`);
    assert.deepEqual(w.errors, JSON.parse(n.stdout), `${label}: different errors`);
  }
}

/** The case file through `run_cases` and through `scimguard test`: the same cases pass and fail. */
function assertSameVerdicts(file, policy) {
  const n = native(['test', '--verbose', file], '');
  const nativeVerdicts = n.stdout.split('\n')
    .filter((l) => /^(ok|FAIL) /.test(l))
    .map((l) => ({ name: l.slice(l.indexOf(': ') + 2), passed: l.startsWith('ok') }));
  const wasmVerdicts = JSON.parse(wasm.run_cases(readFileSync(file, 'utf8'), policy))
    .map(({ name, passed }) => ({ name, passed }));
  assert.deepEqual(wasmVerdicts, nativeVerdicts, `${relative(ROOT, file)}: run_cases and scimguard test disagree`);
}

test('the native binary and the Node package are built', () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run \`make cli\``);
  assert.match(wasm.version(), /^\d+\.\d+\.\d+/);
});

test('every shared test case: same answer from the Node package and the native engine', async (t) => {
  const files = caseFiles();
  assert.ok(files.length > 0, 'no case files under policies/ or tests/cases/');
  let cases = 0;
  for (const file of files) {
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    if (!doc || typeof doc.policy !== 'string' || !(Array.isArray(doc.cases) || Array.isArray(doc.sequences))) continue; // not a case file
    const policyPath = resolve(dirname(file), doc.policy);
    await t.test(relative(ROOT, file), () => {
      assertSameValidate(policyPath, readFileSync(policyPath, 'utf8'), doc.policy);
      assertSameVerdicts(file, readFileSync(policyPath, 'utf8'));
      // The requests as the runners judge them: the file's defaults merged, `$repeat` expanded.
      for (const c of JSON.parse(wasm.case_requests(readFileSync(file, 'utf8')))) {
        assertSameEval(policyPath, JSON.stringify(c.request), `${relative(ROOT, file)}: ${c.name}`);
        cases += 1;
      }
      // Stateful sequences run through `run_cases` above (one verdict per step), as in `scimguard test`.
      for (const s of doc.sequences ?? []) cases += s.steps.length;
    });
  }
  assert.ok(cases > 0, 'the case files hold no cases');
  t.diagnostic(`${cases} cases in ${files.length} files`);
});

test('every playground sample: same answer under the default policy', () => {
  const policyPath = join(ROOT, 'policies/default.json');
  const samples = walk(join(ROOT, 'src/web/samples'), '.json').filter((f) => !f.endsWith('index.json'));
  assert.ok(samples.length >= 6);
  for (const file of samples) {
    assertSameEval(policyPath, readFileSync(file, 'utf8'), relative(ROOT, file));
  }
});

test('malformed requests: both refuse them', () => {
  const policyPath = join(ROOT, 'policies/default.json');
  for (const bad of ['{"method":"PATCH"', '{"method":"PATCH","path":"/scim/v2/Users/1","bdy":{}}', '[]']) {
    assertSameEval(policyPath, bad, bad);
  }
});

test('broken policies: the same errors, lines and hints', () => {
  const text = readFileSync(join(ROOT, 'policies/default.json'), 'utf8');
  const broken = {
    'misspelt field': text.replace('"attribute"', '"atribute"'),
    'unknown severity': text.replace(/"severity":\s*"high"/, '"severity": "hihg"'),
    'truncated document': text.slice(0, Math.floor(text.length / 2)),
    'not an object': '[]',
    'empty': '',
  };
  for (const [label, policy] of Object.entries(broken)) {
    if (label !== 'empty' && label !== 'not an object') assert.notEqual(policy, text, `${label}: the mutation did not apply`);
    assertSameValidate('-', policy, label);
  }
});
