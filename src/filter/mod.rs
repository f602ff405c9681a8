//! The proxy-wasm shell: Envoy's HTTP filter callbacks → `Engine` → local reply, request tags and
//! one audit record per SCIM write. The only module that names `proxy_wasm`.
//!
//! Owns: host calls only. `host` is the one file that calls proxy-wasm; `shared` holds what a VM's streams share and implements the
//! engine's `Host` port over it (shared data, properties, clock, ids, counters); `stream` feeds
//! Envoy's HTTP callbacks to the engine's `Session` and applies the steps it returns; `root`
//! compiles the policy once per VM and owns what every stream shares; `metrics` publishes the
//! engine's counters; `ship` sends queued audit lines and notifications from the root context.
//!
//! Does not own: any judgement. Whether a request is a SCIM write, what it changes, whether it is
//! blocked, what the error body and the audit outputs say, what detections and learned names hold:
//! all of that is the engine's (`engine::Session`), tested by `cargo test` without Envoy. The shell
//! decides only what the host forces on it: that a host failure it cannot work around blocks a
//! write rather than letting it through unjudged.
//!
//! Host requirements (Envoy ≥ 1.35): `allow_on_headers_stop_iteration: true`, so that returning `Pause`
//! from the request-headers callback holds the headers while the body is buffered and judged. On a host
//! without it (Istio `WasmPlugin`, Envoy Gateway without a patch, Envoy < 1.35), the `Pause` is turned
//! into "continue headers, buffer the body": the upstream request starts before the verdict, a block
//! can only reset it, and the tag headers cannot be added. Decisions taken in the headers phase
//! (DELETE, refusals) are unaffected.

mod host;
mod metrics;
mod root;
mod shared;
mod ship;
mod stream;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    // A panic aborts (profile `panic = "abort"`) and traps the VM; `failure_policy: FAIL_RELOAD`
    // replaces it. The hook makes the reason visible in Envoy's log before the trap.
    std::panic::set_hook(Box::new(|info| host::log(LogLevel::Critical, &format!("scimguard: panic: {info}"))));
    proxy_wasm::set_root_context(|context_id| Box::new(root::Root::new(context_id)));
}}
