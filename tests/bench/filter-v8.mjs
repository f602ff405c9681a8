// The filter's guest work without Envoy: scimguard.wasm (the very file Envoy loads) driven through
// its proxy-wasm ABI (0.2.1) by a minimal host written here, in Node's V8. Each request runs the
// callbacks Envoy would call for it (context create, request headers, body, response headers, log,
// done, delete); the host side only copies bytes in and out of the VM's memory.
//
//   node tests/bench/filter-v8.mjs SCIMGUARD.wasm POLICY.json WORK_DIR [--seconds S] [--only NAMES] [--cpu]
//   node tests/bench/filter-v8.mjs SCIMGUARD.wasm POLICY.json WORK_DIR --in-flight N [--only NAMES]
//
// `--in-flight N` measures memory instead: N requests judged and waiting for their upstream at
// once (Envoy's worker interleaves them exactly so), then all completed; prints the VM's linear
// memory before, at the peak and after (`FILTER_V8_MEMORY {…}`). Wasm memory never shrinks, so
// the peak is what the Envoy process keeps.
//
// Prints one line per workload: `FILTER_V8 {"workload":…,"us_per_request":…,"host_calls":…}` (the
// median of 5 timed runs after a warm-up long enough for TurboFan), so that bench.py can set the
// guest's own cost beside what Envoy adds. Run it with `node --cpu-prof` on a build that keeps the
// name section (see `make bench-profile`) to see the guest's time per Rust function.
import { readFileSync } from "node:fs";
import { argv, cpuUsage, exit, hrtime } from "node:process";
import { join } from "node:path";

const [wasmPath, policyPath, workDir, ...rest] = argv.slice(2);
if (!wasmPath || !policyPath || !workDir) {
  console.error("usage: filter-v8.mjs SCIMGUARD.wasm POLICY.json WORK_DIR [--seconds S] [--only NAMES]");
  exit(2);
}
const option = (name, fallback) => {
  const i = rest.indexOf(name);
  return i >= 0 && i + 1 < rest.length ? rest[i + 1] : fallback;
};
const seconds = Number(option("--seconds", "1"));
const only = option("--only", "")?.split(",").filter(Boolean);
const inFlight = Number(option("--in-flight", "0"));
// `--cpu`: time each run by the process's CPU time (user + system) instead of the wall clock, so the
// time a shared machine's neighbours hold the core is not counted (tests/bench/interleave.py uses it).
const byCpu = rest.includes("--cpu");
const cpuUs = () => {
  const { user, system } = cpuUsage();
  return user + system;
};

const USER = "2819c223-7f76-453a-919d-413861904646";
const GROUP = "6c5bb468-14b2-4183-baf2-06d523e03bd3";
const WORKLOADS = [
  ["scim_get", "GET", `/scim/v2/Users/${USER}`, null],
  ["entra_patch", "PATCH", `/scim/v2/Users/${USER}`, "entra_patch.json"],
  ["group_patch_100", "PATCH", `/scim/v2/Groups/${GROUP}`, "group_patch_100.json"],
  ["bulk_100kib", "POST", "/scim/v2/Bulk", "bulk_100kib.json"],
  ["bulk_1mib", "POST", "/scim/v2/Bulk", "bulk_1mib.json"],
].filter(([name]) => (only?.length ? only.includes(name) : name !== "bulk_1mib"));

const enc = new TextEncoder();
const dec = new TextDecoder();
const OK = 0, NOT_FOUND = 1;

// ---- the host's state for the request in flight ----
let request = null; // {headers: [[k,v]], body: Uint8Array}
let responseHeaders = [];
let hostCalls = 0;
const properties = new Map();
const NOW_NS = BigInt(Date.now()) * 1_000_000n;
let instance, memory;

const bytes = () => new Uint8Array(memory.buffer);
const view = () => new DataView(memory.buffer);
const str = (ptr, len) => dec.decode(bytes().subarray(ptr, ptr + len));

// Copies `data` into memory the guest allocates, and writes (ptr, len) where the guest asked.
function give(data, ptrPtr, sizePtr) {
  const ptr = data.length ? instance.exports.proxy_on_memory_allocate(data.length) : 0;
  if (data.length) bytes().set(data, ptr);
  view().setUint32(ptrPtr, ptr, true);
  view().setUint32(sizePtr, data.length, true);
  return OK;
}

function serializeMap(pairs) {
  const encoded = pairs.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
  let size = 4 + encoded.length * 8;
  for (const [k, v] of encoded) size += k.length + v.length + 2;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, encoded.length, true);
  let o = 4;
  for (const [k, v] of encoded) {
    dv.setUint32(o, k.length, true);
    dv.setUint32(o + 4, v.length, true);
    o += 8;
  }
  for (const [k, v] of encoded) {
    out.set(k, o); o += k.length + 1;
    out.set(v, o); o += v.length + 1;
  }
  return out;
}

const mapOf = (type) => (type === 0 ? request.headers : type === 2 ? responseHeaders : []);
// The request's header map is serialised once per workload (the host's cost is not what is measured).
const serialized = (type) => (type === 0 && request.serialized ? request.serialized : serializeMap(mapOf(type)));

function setHeader(type, key, value) {
  const map = mapOf(type);
  const i = map.findIndex(([k]) => k === key);
  if (i >= 0) map[i] = [key, value];
  else map.push([key, value]);
}

const counted = (f) => (...args) => {
  hostCalls++;
  return f(...args);
};

const env = {
  proxy_log: (level, ptr, len) => {
    if (level >= 3) console.error(`wasm log ${level}: ${str(ptr, len)}`);
    return OK;
  },
  proxy_get_header_map_pairs: counted((type, ptrPtr, sizePtr) => give(serialized(type), ptrPtr, sizePtr)),
  proxy_get_header_map_value: counted((type, kp, kl, ptrPtr, sizePtr) => {
    const found = mapOf(type).find(([k]) => k === str(kp, kl));
    return found ? give(enc.encode(found[1]), ptrPtr, sizePtr) : NOT_FOUND;
  }),
  proxy_replace_header_map_value: counted((type, kp, kl, vp, vl) => (type === 2 && setHeader(type, str(kp, kl), str(vp, vl)), OK)),
  proxy_add_header_map_value: counted((type, kp, kl, vp, vl) => (mapOf(type).push([str(kp, kl), str(vp, vl)]), OK)),
  proxy_remove_header_map_value: counted((type, kp, kl) => {
    const key = str(kp, kl);
    const map = mapOf(type);
    for (let i = map.length - 1; i >= 0; i--) if (map[i][0] === key) map.splice(i, 1);
    return OK;
  }),
  proxy_set_header_map_pairs: counted(() => OK),
  proxy_get_buffer_bytes: counted((type, start, max, ptrPtr, sizePtr) => {
    const data = type === 7 ? enc.encode(policy) : type === 0 && request.body ? request.body : new Uint8Array();
    return give(data.subarray(start, start + max), ptrPtr, sizePtr);
  }),
  proxy_set_buffer_bytes: counted(() => OK),
  proxy_get_property: counted((pp, pl, ptrPtr, sizePtr) => {
    const value = properties.get(str(pp, pl));
    return value === undefined ? NOT_FOUND : give(value, ptrPtr, sizePtr);
  }),
  proxy_set_property: counted((pp, pl, vp, vl) => {
    lastRecord = str(vp, vl);
    return OK;
  }),
  proxy_get_current_time_nanoseconds: counted((ptr) => {
    view().setBigUint64(ptr, NOW_NS, true);
    return OK;
  }),
  proxy_define_metric: (type, np, nl, idPtr) => (view().setUint32(idPtr, ++metricIds, true), OK),
  proxy_increment_metric: counted(() => OK),
  proxy_set_tick_period_milliseconds: () => OK,
  proxy_send_local_response: counted(() => OK),
  proxy_continue_stream: counted(() => OK),
  proxy_close_stream: counted(() => OK),
  proxy_get_shared_data: counted(() => NOT_FOUND),
  proxy_set_shared_data: counted(() => OK),
  proxy_http_call: counted(() => 2 /* BadArgument: no clusters here */),
  proxy_done: () => OK,
  proxy_get_status: () => OK,
  proxy_set_effective_context: () => OK,
  proxy_call_foreign_function: () => NOT_FOUND,
};
for (const name of ["proxy_grpc_cancel", "proxy_grpc_close", "proxy_grpc_send", "proxy_grpc_stream", "proxy_grpc_call",
  "proxy_dequeue_shared_queue", "proxy_enqueue_shared_queue", "proxy_resolve_shared_queue", "proxy_register_shared_queue"]) {
  env[name] = () => 2;
}
let metricIds = 0;
let lastRecord = "";

const wasi = {
  random_get: (ptr, len) => {
    for (let i = 0; i < len; i++) bytes()[ptr + i] = (Math.random() * 256) | 0;
    return 0;
  },
  environ_get: () => 0,
  environ_sizes_get: (countPtr, sizePtr) => {
    view().setUint32(countPtr, 0, true);
    view().setUint32(sizePtr, 0, true);
    return 0;
  },
  fd_write: (fd, iovs, n, written) => {
    view().setUint32(written, 0, true);
    return 0;
  },
  proc_exit: (code) => {
    throw new Error(`proc_exit(${code})`);
  },
};

const policy = readFileSync(policyPath, "utf8");
const le64 = (n) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt(n), true);
  return b;
};
properties.set("xds\0node\0id", enc.encode("bench"));
properties.set("source\0address", enc.encode("127.0.0.1:40000"));
properties.set("response\0code", le64(200));

const module = new WebAssembly.Module(readFileSync(wasmPath));
instance = new WebAssembly.Instance(module, { env, wasi_snapshot_preview1: wasi });
memory = instance.exports.memory;
const x = instance.exports;
x._initialize?.();
const ROOT = 1;
x.proxy_on_context_create(ROOT, 0);
if (!x.proxy_on_vm_start(ROOT, 0)) throw new Error("vm start refused");
if (!x.proxy_on_configure(ROOT, enc.encode(policy).length)) throw new Error("policy refused");

let nextContext = 2;
properties.set("request\0time", le64(NOW_NS - 1_000_000n));

function requestOf(method, path, body) {
  const headers = [[":method", method], [":path", path], [":authority", "app.example.com"], [":scheme", "http"],
    ["content-type", "application/scim+json"], ["user-agent", "Azure AD Provisioning"],
    ["x-request-id", "7f1d0c3e-2b1a-4c55-9e1e-1d5b0b0b7a11"], ["authorization", "Bearer not-a-real-token"]];
  if (body) headers.push(["content-length", String(body.length)]);
  return { headers, body, serialized: serializeMap(headers) };
}

// One request through every callback Envoy calls for it; returns the host calls it made.
function one(prepared) {
  const id = nextContext++;
  request = prepared;
  const body = prepared.body;
  responseHeaders = [[":status", "200"], ["content-type", "application/scim+json"]];
  const before = hostCalls;
  x.proxy_on_context_create(id, ROOT);
  const headerAction = x.proxy_on_request_headers(id, request.headers.length, body ? 0 : 1);
  if (body) x.proxy_on_request_body(id, body.length, 1);
  x.proxy_on_response_headers(id, responseHeaders.length, 1);
  x.proxy_on_log(id);
  x.proxy_on_done(id);
  x.proxy_on_delete(id);
  return { calls: hostCalls - before, headerAction };
}

const MiB = 1024 * 1024;
if (inFlight > 0) {
  for (const [name, method, path, file] of WORKLOADS) {
    const prepared = requestOf(method, path, file ? readFileSync(join(workDir, file)) : null);
    one(prepared); // first use: lazily built state is not what is measured
    const before = memory.buffer.byteLength;
    const ids = [];
    for (let i = 0; i < inFlight; i++) {
      const id = nextContext++;
      ids.push(id);
      request = prepared;
      x.proxy_on_context_create(id, ROOT);
      x.proxy_on_request_headers(id, prepared.headers.length, prepared.body ? 0 : 1);
      if (prepared.body) x.proxy_on_request_body(id, prepared.body.length, 1);
    }
    const peak = memory.buffer.byteLength;
    for (const id of ids) {
      responseHeaders = [[":status", "200"], ["content-type", "application/scim+json"]];
      x.proxy_on_response_headers(id, responseHeaders.length, 1);
      x.proxy_on_log(id);
      x.proxy_on_done(id);
      x.proxy_on_delete(id);
    }
    console.log("FILTER_V8_MEMORY " + JSON.stringify({
      workload: name, in_flight: inFlight, mib_before: +(before / MiB).toFixed(1), mib_peak: +(peak / MiB).toFixed(1),
      mib_after: +(memory.buffer.byteLength / MiB).toFixed(1),
    }));
  }
  exit(0);
}

for (const [name, method, path, file] of WORKLOADS) {
  const prepared = requestOf(method, path, file ? readFileSync(join(workDir, file)) : null);
  const probe = one(prepared);
  // Warm-up: V8 tiers the hot functions up to TurboFan (Envoy compiles with TurboFan only).
  const warm = Date.now() + 1000 * Math.max(seconds, 0.5);
  while (Date.now() < warm) one(prepared);
  const runs = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const t0 = hrtime.bigint();
    const until = t0 + BigInt(Math.round(seconds * 2e8));
    const c0 = cpuUs();
    let t = t0;
    while (t < until) {
      for (let i = 0; i < 50; i++) one(prepared);
      n += 50;
      t = hrtime.bigint();
    }
    runs.push((byCpu ? cpuUs() - c0 : Number(t - t0) / 1e3) / n);
  }
  runs.sort((a, b) => a - b);
  console.log("FILTER_V8 " + JSON.stringify({
    workload: name, us_per_request: Number(runs[2].toFixed(2)), host_calls: probe.calls,
    record_bytes: lastRecord.length, decision: (responseHeaders.find(([k]) => k === "x-scim-decision") ?? [])[1] ?? null,
  }));
}
