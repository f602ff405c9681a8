// The native engine bench (tests/bench/engine.rs) compiled for wasm32-wasip1 and run in Node's V8:
// the same code and payloads as the native figures, inside V8, without Envoy. bench.py prints both
// side by side, so the V8-vs-native ratio of the engine alone is known apart from host-call costs.
//   node tests/bench/engine-wasi.mjs ENGINE.wasm [--quick]
// Node tiers code up from Liftoff to TurboFan; Envoy compiles with TurboFan only (--no-liftoff).
// The warm-up rounds in engine.rs run long enough for the hot functions to tier up.
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import { argv, exit } from "node:process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const [wasmPath, ...rest] = argv.slice(2);
// engine.rs reads policies/default.json at CARGO_MANIFEST_DIR (an absolute path): preopen the repo there.
const wasi = new WASI({ version: "preview1", args: ["engine", ...rest], preopens: { [root]: root } });
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance));
