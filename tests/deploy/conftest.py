"""pytest fixtures for the deploy suite (image, manifests, monitoring): a closing summary.

Inputs: target/oci (`make oci`), the Debian tools `make deploy-tools` installs, and the CRD
schemas in ../shared/crds beside the clone (tests that need them skip, saying so, where that
folder is absent).
"""

from __future__ import annotations

import pytest

SUMMARY: list[str] = []


@pytest.fixture
def summary() -> list[str]:
    """Lines a test wants printed at the end of the run (pytest captures its stdout)."""
    return SUMMARY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in SUMMARY:
        terminalreporter.write_line(line)
