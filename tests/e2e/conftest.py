"""pytest fixtures for the e2e suite: a running gateway (Envoy 1.40 + scimguard.wasm + the
recording scim2-server upstream), clients for both protocols, and a closing summary.

Inputs (environment):
  SCIMGUARD_WASM    the filter to load (default: target/wasm32-wasip1/release/scimguard.wasm)
  SCIMGUARD_POLICY  the policy to render in (default: policies/default.json)
Missing inputs fail the tests with a hint; nothing is skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clients import PROTOCOLS, client  # noqa: E402
from harness import Gateway, policy_path, start_gateway, wasm_path  # noqa: E402

SUMMARY: list[str] = []


def require_inputs() -> None:
    """Fail (not skip) with a hint when the filter or the policy is missing."""
    if not wasm_path().is_file():
        pytest.fail(f"{wasm_path()} is missing: run `make wasm` (or set SCIMGUARD_WASM)", pytrace=False)
    if not policy_path().is_file():
        pytest.fail(f"{policy_path()} is missing (or set SCIMGUARD_POLICY)", pytrace=False)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway for the whole session; tests tell their traffic apart by unique names."""
    require_inputs()
    gw = start_gateway(tmp_path_factory.mktemp("gateway"))
    yield gw
    gw.stop()


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def scim(gateway: Gateway, protocol: str) -> Iterator[httpx.Client]:
    """A client of the SCIM API through the gateway, in HTTP/1.1 or h2c."""
    with client(gateway.url, protocol) as c:
        yield c


@pytest.fixture
def direct(gateway: Gateway) -> Iterator[httpx.Client]:
    """A client of the upstream itself, bypassing Envoy (for setup and for checking state)."""
    with client(gateway.upstream_url, "http/1.1") as c:
        yield c


@pytest.fixture
def summary() -> list[str]:
    """Lines a test wants printed at the end of the run (pytest captures its stdout)."""
    return SUMMARY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in SUMMARY:
        terminalreporter.write_line(line)
