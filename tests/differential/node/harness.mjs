// The Node implementations of the differential oracle, as one long-lived process.
//
// Reads JSON lines on stdin: {"impl": "scim-patch"|"scimmy", "state": {"Users": {id: resource},
// "Groups": {id: resource}}, "request": {"method", "path", "headers", "body"|"raw_body"}} and writes
// one JSON line per input: {"status": <HTTP status or null>, "state": <state after>, "error": <text>}.
//
// scim-patch is a library: only a PATCH applies (`scimPatch(resource, body.Operations)`, the way
// SaaS apps call it); anything else answers {"status": null, "error": "n/a"}. scimmy runs as a real
// SCIM server (scimmy-routers on express, loopback), whose handlers keep resources in `store`, which
// each request first resets to the given state. Does not: keep anything between requests.
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";
import { scimPatch } from "scim-patch";
import readline from "node:readline";

const BASE = "/scim/v2";
// scimmy-routers logs every handler exception; the reply carries the error, keep stdout/stderr clean.
console.error = () => {};
let store = { Users: {}, Groups: {} };
let nextId = 1;

function declare(resource, type) {
  SCIMMY.Resources.declare(resource)
    .ingress((res, instance) => {
      const data = JSON.parse(JSON.stringify(instance));
      const id = res.id ?? `new-${type}-${nextId++}`;
      if (res.id && !store[type][id]) throw new SCIMMY.Types.Error(404, null, `Resource ${id} not found`);
      store[type][id] = { ...data, id };
      return store[type][id];
    })
    .egress((res) => {
      if (res.id) {
        const r = store[type][res.id];
        if (!r) throw new SCIMMY.Types.Error(404, null, `Resource ${res.id} not found`);
        return r;
      }
      return Object.values(store[type]);
    })
    .degress((res) => {
      if (!store[type][res.id]) throw new SCIMMY.Types.Error(404, null, `Resource ${res.id} not found`);
      delete store[type][res.id];
    });
}

SCIMMY.Resources.User.extend(SCIMMY.Schemas.EnterpriseUser, false);
declare(SCIMMY.Resources.User, "Users");
declare(SCIMMY.Resources.Group, "Groups");

const app = express();
app.use(BASE, new SCIMMYRouters({ type: "bearer", handler: () => "differential", context: () => ({}) }));
const server = await new Promise((resolve) => {
  const s = app.listen(0, "127.0.0.1", () => resolve(s));
});
const origin = `http://127.0.0.1:${server.address().port}`;

async function scimmy(state, request) {
  store = structuredClone(state);
  nextId = 1;
  const body = request.raw_body ?? (request.body === undefined || request.body === null ? undefined : JSON.stringify(request.body));
  const headers = { "content-type": "application/scim+json", ...(request.headers ?? {}) };
  const reply = await fetch(origin + request.path, { method: request.method, headers, body });
  const text = await reply.text();
  const out = { status: reply.status, state: store };
  if (reply.status >= 400) out.error = text.slice(0, 500);
  if (request.path.endsWith("/Bulk")) out.response = safeJson(text);
  return out;
}

function scimPatchApply(state, request) {
  const m = /^\/scim\/v2\/(Users|Groups)\/([^/?]+)$/.exec(request.path);
  if (request.method !== "PATCH" || !m) return { status: null, state, error: "n/a" };
  const after = structuredClone(state);
  const resource = after[m[1]][decodeURIComponent(m[2])];
  if (!resource) return { status: 404, state, error: "not found" };
  const body = request.raw_body !== undefined ? safeJson(request.raw_body) : request.body;
  try {
    const patched = scimPatch(resource, body?.Operations, { mutateDocument: false });
    after[m[1]][resource.id] = patched;
    return { status: 200, state: after };
  } catch (e) {
    return { status: 400, state, error: String(e?.message ?? e).slice(0, 500) };
  }
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  let out;
  try {
    const { impl, state, request } = JSON.parse(line);
    out = impl === "scimmy" ? await scimmy(state, request) : scimPatchApply(state, request);
  } catch (e) {
    out = { status: null, state: null, error: `harness: ${e?.message ?? e}` };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}
server.close();
