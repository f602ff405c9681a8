"""SCIM request bodies for the e2e suite (RFC 7643 User/Group, RFC 7644 PatchOp).

Owns: building bodies as bytes, so tests can compare what the upstream received byte
for byte. Every name is unique per call, so tests sharing one upstream never collide.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def user(user_name: str | None = None, *, password: str | None = None, **extra: Any) -> bytes:
    document: dict[str, Any] = {"schemas": [USER], "userName": user_name or unique("user"), **extra}
    if password is not None:
        document["password"] = password
    return encode(document)


def group(display_name: str, members: list[str] | None = None) -> bytes:
    document: dict[str, Any] = {"schemas": [GROUP], "displayName": display_name}
    if members:
        document["members"] = [{"value": member} for member in members]
    return encode(document)


def patch(*operations: dict[str, Any]) -> bytes:
    return encode({"schemas": [PATCH_OP], "Operations": list(operations)})


def add_members(*member_ids: str) -> bytes:
    return patch({"op": "add", "path": "members", "value": [{"value": m} for m in member_ids]})


def replace(path: str, value: Any) -> bytes:
    return patch({"op": "replace", "path": path, "value": value})


def oversize_user(size: int) -> bytes:
    """A well-formed User body of exactly `size` bytes (padding in `nickName`)."""
    name = unique("big")
    padding = size - len(user(name, nickName=""))
    if padding < 0:
        raise ValueError(f"size {size} is below the minimal User body")
    return user(name, nickName="x" * padding)
