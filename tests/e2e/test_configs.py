"""Every shipped Envoy config passes `envoy --mode validate` with the real filter and policy.

Validation in Envoy 1.40 parses the config, opens the log files, loads the .wasm into v8 and
runs the filter's on_configure with the policy, so it also proves the policy is accepted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_inputs
from harness import ROOT, free_port, render_config, validate_config

SHIPPED = [ROOT / "envoy.yaml", *sorted((ROOT / "tests" / "envoy").glob("*.yaml"))]
POLICIES = sorted(p for p in (ROOT / "policies").glob("*.json") if not p.name.endswith(".cases.json"))


@pytest.mark.parametrize("template", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_config_validates(template: Path, tmp_path: Path) -> None:
    require_inputs()
    ports = {"listen": free_port(), "admin": free_port(), "upstream": free_port(), "app": free_port()}
    config = render_config(tmp_path, ports=ports, template=template)
    result = validate_config(config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"configuration '{config}' OK" in result.stdout + result.stderr


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_policy_loads_in_envoy(policy: Path, tmp_path: Path) -> None:
    require_inputs()
    ports = {"listen": free_port(), "admin": free_port(), "upstream": free_port(), "app": free_port()}
    result = validate_config(render_config(tmp_path, ports=ports, policy=policy))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
