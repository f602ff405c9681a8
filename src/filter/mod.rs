//! The proxy-wasm shell: Envoy's HTTP filter callbacks → `Engine` → local reply, request tags and
//! one audit record per SCIM write. The only module that names `proxy_wasm`.
//!
//! Owns: reading headers, body and properties from the host (`host`, the one adapter), the root
//! context that compiles the policy once and defines the counters (`root`, `metrics`), the per-request
//! state machine (`stream`), group displayNames learned from responses or looked up from the upstream
//! (`groups`), the host facts of an audit record (`audit`), and the audit trail's Envoy side:
//! shipping records and signed notifications from the root context (`ship`), access auditing of
//! application routes (`access`), detections in shared data (`detect`) and the operator endpoints
//! that clear them (`ops`).
//!
//! Does not own: any judgement. Whether a request is a SCIM write, what it changes, whether it is
//! blocked, what the error body and the audit record say: all of that is the engine's. The shell
//! decides only what the host forces on it: when to read the body, when to hold the request, and that a
//! host failure it cannot work around blocks a write rather than letting it through unjudged.
//!
//! Host requirements (Envoy ≥ 1.35): `allow_on_headers_stop_iteration: true`, so that returning `Pause`
//! from the request-headers callback holds the headers while the body is buffered and judged. On a host
//! without it (Istio `WasmPlugin`, Envoy Gateway without a patch, Envoy < 1.35), the `Pause` is turned
//! into "continue headers, buffer the body": the upstream request starts before the verdict, a block
//! can only reset it, and the tag headers cannot be added. Decisions taken in the headers phase
//! (DELETE, refusals) are unaffected.

mod access;
mod audit;
mod detect;
mod fleet;
mod groups;
mod host;
mod metrics;
mod ops;
mod root;
mod ship;
mod stream;
mod verdict;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    // A panic aborts (profile `panic = "abort"`) and traps the VM; `failure_policy: FAIL_RELOAD`
    // replaces it. The hook makes the reason visible in Envoy's log before the trap.
    std::panic::set_hook(Box::new(|info| host::log(LogLevel::Critical, &format!("scimguard: panic: {info}"))));
    proxy_wasm::set_root_context(|context_id| Box::new(root::Root::new(context_id)));
}}
