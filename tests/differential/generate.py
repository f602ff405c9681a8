"""The seeded generator of SCIM writes for the differential oracle.

Owns: the seed state every write starts from (`SEED_STATE`: four users, three groups, one of them
privileged) and `writes(seed, n)`, n write requests drawn from one `random.Random(seed)`: every
RFC 7644 PATCH form (add/replace/remove, with and without path, value filters with and/or/not/pr,
sub-attributes, URN-qualified paths in core/enterprise/case variants, path-less values with plain,
dotted and URN keys and nested extension objects), POST, PUT, DELETE and Bulk with `bulkId`
references, op/key case and spelling variants (alias spellings such as `display_name`), IdP dialects
(Entra string booleans, JSON-in-string roles, remove members+value; Okta path-less replace active;
Salesforce wrapped members; SCIM 1.1 `operation: delete`), random attribute names, and member
entries of every shape. The same seed gives the same writes, byte for byte.
Does not: talk to any implementation or to scimguard (see run.py).
"""

from __future__ import annotations

import json
import random
import string
from typing import Any

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BASE = "/scim/v2"
HOST = "https://example.com/scim/v2"

USERS = ["u1", "u2", "u3", "u4"]
GROUPS = ["g1", "g2", "g3"]
GROUP_NAMES = {"g1": "Engineering", "g2": "Administrators", "g3": "Marketing"}


def _user(uid: str, name: str, active: bool, roles: list[str], **extra: Any) -> dict[str, Any]:
    user = {
        "schemas": [CORE_USER, ENTERPRISE],
        "id": uid,
        "userName": f"{name}@example.com",
        "externalId": f"ext-{name}",
        "displayName": name.title(),
        "name": {"givenName": name.title(), "familyName": "Doe"},
        "active": active,
        "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}],
        "roles": [{"value": r} for r in roles],
        "entitlements": [{"value": "basic"}],
        ENTERPRISE: {"employeeNumber": uid[1:], "department": "Eng"},
    }
    user.update(extra)
    return user


SEED_STATE: dict[str, dict[str, Any]] = {
    "Users": {
        "u1": _user("u1", "ann", True, ["reader"]),
        "u2": _user("u2", "bob", True, []),
        "u3": _user("u3", "cy", False, ["writer"]),
        "u4": _user("u4", "dee", True, ["reader", "writer"]),
    },
    "Groups": {
        "g1": {"schemas": [CORE_GROUP], "id": "g1", "displayName": "Engineering",
               "members": [{"value": "u1", "display": "Ann"}, {"value": "u2", "display": "Bob"}]},
        "g2": {"schemas": [CORE_GROUP], "id": "g2", "displayName": "Administrators",
               "members": [{"value": "u3", "display": "Cy"}]},
        "g3": {"schemas": [CORE_GROUP], "id": "g3", "displayName": "Marketing"},
    },
}


class Gen:
    """One seeded stream of writes. Every choice goes through `self.r`."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    # ---- small choices ------------------------------------------------------------------------
    def pick(self, *options: Any) -> Any:
        return self.r.choice(options)

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def case(self, word: str) -> str:
        """Mostly as given; sometimes upper, lower, or capitalised (names are case-insensitive)."""
        if self.chance(0.75):
            return word
        return self.pick(word.upper(), word.lower(), word[:1].upper() + word[1:])

    def uid(self) -> str:
        return self.pick(*USERS, "u1", "u9")

    def gid(self) -> str:
        return self.pick(*GROUPS)

    def word(self) -> str:
        return "".join(self.r.choice(string.ascii_letters) for _ in range(self.r.randint(3, 9)))

    # ---- attribute spellings ------------------------------------------------------------------
    def attr(self, name: str, core: str) -> str:
        """An attribute name as a client may spell it: plain, case variant, alias, URN-qualified."""
        alias = "".join("_" + c.lower() if c.isupper() else c for c in name)
        base = alias if alias != name and self.chance(0.1) else self.case(name)
        if self.chance(0.15):
            return f"{self.pick(core, core.upper(), core.lower())}:{base}"
        return base

    def ent_attr(self, name: str) -> str:
        return f"{self.pick(ENTERPRISE, ENTERPRISE.upper(), ENTERPRISE.lower())}:{self.case(name)}"

    # ---- member entries and filters -----------------------------------------------------------
    def member(self) -> Any:
        u = self.uid()
        shapes = [
            lambda: {"value": u},
            lambda: {"value": u},
            lambda: {"value": u, "display": u.upper()},
            lambda: {"$ref": f"{HOST}/Users/{u}"},
            lambda: {"value": u, "$ref": f"{HOST}/Users/{self.uid()}"},
            lambda: {"value": u, "$ref": None},
            lambda: {},
            lambda: {"value": self.gid(), "type": "Group"},
            lambda: {"display": "Ann"},
            lambda: {self.case("value"): u},
            lambda: {"value": u, "type": self.pick("User", "user", "Group")},
            lambda: u,
        ]
        return self.r.choice(shapes)()

    def members(self) -> list[Any]:
        return [self.member() for _ in range(self.r.randint(0 if self.chance(0.1) else 1, 3))]

    def comp(self, attrs: tuple[str, ...], values: list[str]) -> str:
        a = self.case(self.pick(*attrs))
        if self.chance(0.15):
            return f"{a} {self.case('pr')}"
        op = self.case(self.pick("eq", "eq", "eq", "ne", "co", "sw", "ew"))
        return f'{a} {op} {json.dumps(self.pick(*values))}'

    def filter(self, attrs: tuple[str, ...], values: list[str], depth: int = 0) -> str:
        roll = self.r.random()
        if depth < 2 and roll < 0.15:
            return f"{self.filter(attrs, values, depth + 1)} {self.case('and')} {self.filter(attrs, values, depth + 1)}"
        if depth < 2 and roll < 0.3:
            return f"{self.filter(attrs, values, depth + 1)} {self.case('or')} {self.filter(attrs, values, depth + 1)}"
        if depth < 2 and roll < 0.4:
            return f"{self.case('not')} ({self.filter(attrs, values, depth + 1)})"
        return self.comp(attrs, values)

    def member_filter(self) -> str:
        return self.filter(("value", "display", "type", "$ref"), [*USERS, "u9", "Ann", "User", "Group", "u"])

    # ---- PATCH operations ---------------------------------------------------------------------
    def op_name(self, op: str) -> str:
        return self.pick(op, op, op, op, op.capitalize(), op.capitalize(), op.upper())

    def patch_op(self, op: str, path: str | None, value: Any = None, has_value: bool = True) -> dict[str, Any]:
        o: dict[str, Any] = {"Op" if self.chance(0.03) else "op": self.op_name(op)}
        if path is not None:
            o["Path" if self.chance(0.03) else "path"] = path
        if has_value:
            o["Value" if self.chance(0.03) else "value"] = value
        return o

    def group_op(self) -> dict[str, Any]:
        members = lambda: self.attr("members", CORE_GROUP)  # noqa: E731
        forms = [
            lambda: self.patch_op("add", members(), self.members()),
            lambda: self.patch_op("add", members(), self.members()),
            lambda: self.patch_op("replace", members(), self.members()),
            lambda: self.patch_op("remove", members(), None, has_value=False),
            lambda: self.patch_op("remove", members(), self.members()),
            lambda: self.patch_op("remove", f"{members()}[{self.member_filter()}]", None, has_value=False),
            lambda: self.patch_op("remove", f"{members()}[{self.member_filter()}]", None, has_value=False),
            lambda: self.patch_op(self.pick("replace", "add"), f"{members()}[{self.member_filter()}]"
                                  f".{self.case(self.pick('value', '$ref', 'display', 'type'))}", self.uid()),
            lambda: self.patch_op(self.pick("replace", "add"), f"{members()}[{self.member_filter()}]", self.member()),
            lambda: self.patch_op(self.pick("replace", "add"), f"{members()}.{self.case('value')}", self.uid()),
            lambda: self.patch_op(self.pick("replace", "add"), self.attr("displayName", CORE_GROUP), self.group_name()),
            lambda: self.patch_op(self.pick("replace", "add"), self.attr("displayName", CORE_GROUP), self.group_name()),
            lambda: self.patch_op("remove", self.attr("displayName", CORE_GROUP), None, has_value=False),
            lambda: self.patch_op(self.pick("replace", "add"), None, self.group_value()),
            lambda: self.patch_op(self.pick("replace", "add"), None, self.group_value()),
            # Salesforce: the member list wrapped in an object.
            lambda: self.patch_op("add", members(), {"members": self.members()}),
            # SCIM 1.1 style removal inside a 2.0 PatchOp.
            lambda: self.patch_op(self.pick("add", "replace"), members(),
                                  [{"value": self.uid(), "operation": self.pick("delete", "Delete")}]),
            lambda: self.patch_op(self.pick("add", "replace"), self.attr("externalId", CORE_GROUP), self.word()),
            lambda: self.patch_op(self.pick("add", "replace", "remove"), self.case(self.word()), self.word()),
        ]
        return self.r.choice(forms)()

    def group_name(self) -> str:
        return self.pick("Domain Admins", "Administrators", "Engineering", "Marketing", "Root Cause Analysis",
                         "Sales", self.word())

    def group_value(self) -> dict[str, Any]:
        v: dict[str, Any] = {}
        for _ in range(self.r.randint(1, 3)):
            key, val = self.pick(
                lambda: (self.attr("displayName", CORE_GROUP), self.group_name()),
                lambda: (self.attr("members", CORE_GROUP), self.members()),
                lambda: (self.pick(CORE_GROUP, CORE_GROUP.lower()), {self.case("displayName"): self.group_name()}),
                lambda: (self.attr("externalId", CORE_GROUP), self.word()),
                lambda: ("id", self.gid()),
                lambda: (self.case(self.word()), self.word()),
            )()
            v[key] = val
        return v

    def user_op(self) -> dict[str, Any]:
        forms = [
            lambda: self.patch_op(self.pick("replace", "add"), self.attr("active", CORE_USER), self.active_value()),
            lambda: self.patch_op(self.pick("replace", "add"), self.attr("active", CORE_USER), self.active_value()),
            lambda: self.patch_op("remove", self.attr("active", CORE_USER), None, has_value=False),
            lambda: self.patch_op(self.pick("replace", "add"), None, {self.attr("active", CORE_USER): self.active_value()}),
            lambda: self.patch_op(self.pick("replace", "add"), self.attr("userName", CORE_USER), f"{self.word()}@example.com"),
            lambda: self.patch_op(self.pick("replace", "add"), self.attr("externalId", CORE_USER), self.word()),
            lambda: self.patch_op("remove", self.attr("externalId", CORE_USER), None, has_value=False),
            lambda: self.patch_op(self.pick("replace", "add"), self.attr("emails", CORE_USER), self.emails()),
            lambda: self.patch_op("replace", f"{self.attr('emails', CORE_USER)}[{self.email_filter()}].{self.case('value')}",
                                  f"{self.word()}@evil.example"),
            lambda: self.patch_op("remove", f"{self.attr('emails', CORE_USER)}[{self.email_filter()}]", None, has_value=False),
            lambda: self.patch_op(self.pick("add", "replace"), self.attr("roles", CORE_USER), self.roles()),
            lambda: self.patch_op("remove", self.attr("roles", CORE_USER), None, has_value=False),
            lambda: self.patch_op("remove", f"{self.attr('roles', CORE_USER)}[{self.role_filter()}]", None, has_value=False),
            lambda: self.patch_op("replace", f"{self.attr('roles', CORE_USER)}[{self.role_filter()}].{self.case('value')}",
                                  self.role_value()),
            lambda: self.patch_op(self.pick("add", "replace"), self.attr("entitlements", CORE_USER), self.roles()),
            lambda: self.patch_op(self.pick("add", "replace"), self.attr("password", CORE_USER), "S3cret!" + self.word()),
            lambda: self.patch_op(self.pick("add", "replace"), self.attr("groups", CORE_USER), [{"value": self.gid()}]),
            lambda: self.patch_op(self.pick("replace", "add"), None, self.user_value()),
            lambda: self.patch_op(self.pick("replace", "add"), None, self.user_value()),
            lambda: self.patch_op(self.pick("replace", "add"), self.ent_attr(self.pick("department", "employeeNumber")), self.word()),
            lambda: self.patch_op(self.pick("replace", "add"), self.ent_attr("manager"),
                                  self.pick({"value": self.uid()}, [{"value": self.uid(), "$ref": None}])),
            lambda: self.patch_op(self.pick("replace", "add"), f"{self.case('name')}.{self.case('givenName')}", self.word()),
            lambda: self.patch_op(self.pick("replace", "add"), self.attr("displayName", CORE_USER), self.word()),
            lambda: self.patch_op(self.pick("add", "replace", "remove"), self.random_attr(), self.random_value()),
        ]
        return self.r.choice(forms)()

    def active_value(self) -> Any:
        return self.pick(False, False, True, "False", "True", "false", "true", 0, 1, [False], None)

    def emails(self) -> list[dict[str, Any]]:
        return [{"value": f"{self.word()}@evil.example", "type": self.pick("work", "home"), "primary": self.chance(0.5)}]

    def email_filter(self) -> str:
        return self.filter(("type", "value", "primary"), ["work", "home", "ann@example.com"])

    def role_value(self) -> str:
        return self.pick("admin", "reader", "writer", "Global Administrator", self.word())

    def roles(self) -> list[Any]:
        role = self.role_value()
        shapes = [
            lambda: [{"value": role}],
            lambda: [{"value": role, "primary": True, "type": "app"}],
            # Entra: the role object as JSON inside a string.
            lambda: [{"value": json.dumps({"id": "06b0", "value": role, "displayName": role})}],
            lambda: [role],
            lambda: [],
        ]
        return self.r.choice(shapes)()

    def role_filter(self) -> str:
        return self.filter(("value", "type", "primary"), ["reader", "writer", "admin"])

    def random_attr(self) -> str:
        name = self.pick(self.word(), "isAdmin", "adminRole", "superuser", "x509Certificates", "nickName", "title")
        if self.chance(0.3):
            return f"urn:example:params:scim:schemas:extension:{self.word()}:2.0:User:{name}"
        return self.case(name)

    def random_value(self) -> Any:
        return self.pick(True, False, self.word(), "admin", 7, [{"value": self.word()}], {"value": "x"})

    def user_value(self) -> dict[str, Any]:
        v: dict[str, Any] = {}
        for _ in range(self.r.randint(1, 3)):
            key, val = self.pick(
                lambda: (self.attr("active", CORE_USER), self.active_value()),
                lambda: (self.attr("userName", CORE_USER), f"{self.word()}@example.com"),
                lambda: (self.attr("externalId", CORE_USER), self.word()),
                lambda: (self.attr("emails", CORE_USER), self.emails()),
                lambda: (self.attr("roles", CORE_USER), self.roles()),
                lambda: (self.attr("password", CORE_USER), "S3cret!" + self.word()),
                lambda: (f"{self.case('name')}.{self.case('givenName')}", self.word()),
                lambda: (f"{self.case('emails')}[{self.email_filter()}].{self.case('value')}", f"{self.word()}@evil.example"),
                lambda: (self.pick(ENTERPRISE, ENTERPRISE.lower()), {self.case("department"): self.word()}),
                lambda: (self.pick(CORE_USER, CORE_USER.upper()), {self.attr("active", CORE_USER): self.active_value()}),
                lambda: (self.ent_attr("department"), self.word()),
                lambda: (self.attr("groups", CORE_USER), [{"value": self.gid()}]),
                lambda: (self.random_attr(), self.random_value()),
            )()
            v[key] = val
        return v

    # ---- whole writes -------------------------------------------------------------------------
    def patch_body(self, group: bool) -> dict[str, Any]:
        ops = [self.group_op() if group else self.user_op() for _ in range(self.r.randint(1, 3))]
        body: dict[str, Any] = {"operations" if self.chance(0.05) else "Operations": ops}
        if self.chance(0.95):
            body = {"schemas": [PATCH_OP], **body}
        return body

    def scim11_patch(self) -> dict[str, Any]:
        """A SCIM 1.1 PATCH: a partial resource; member entries may carry `operation: delete`."""
        members = [{"value": self.uid(), **({"operation": "delete"} if self.chance(0.6) else {})}
                   for _ in range(self.r.randint(1, 2))]
        body: dict[str, Any] = {"schemas": ["urn:scim:schemas:core:1.0"], "members": members}
        if self.chance(0.3):
            body["meta"] = {"attributes": ["members"]}
        if self.chance(0.3):
            body["displayName"] = self.group_name()
        return body

    def user_resource(self, uid: str | None) -> dict[str, Any]:
        name = self.word().lower()
        body: dict[str, Any] = {"schemas": [CORE_USER]}
        body[self.attr("userName", CORE_USER) if self.chance(0.8) else "userName"] = f"{name}@example.com"
        if self.chance(0.1):
            body[self.pick("user_name", "USERNAME", "username")] = f"{self.word()}@example.com"
        if self.chance(0.6):
            body[self.attr("active", CORE_USER)] = self.active_value()
        for key, val in (("externalId", self.word()), ("emails", self.emails()), ("roles", self.roles()),
                         ("entitlements", self.roles()), ("password", "S3cret!" + self.word()),
                         ("groups", [{"value": self.gid()}])):
            if self.chance(0.35):
                body[self.attr(key, CORE_USER)] = val
        if self.chance(0.3):
            body[ENTERPRISE] = {self.case("department"): self.word()}
            body["schemas"].append(ENTERPRISE)
        if self.chance(0.15):
            body[self.random_attr()] = self.random_value()
        if uid is not None and self.chance(0.5):
            body["id"] = uid
        return body

    def group_resource(self, gid: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [CORE_GROUP], self.attr("displayName", CORE_GROUP): self.group_name()}
        if self.chance(0.1):
            body[self.pick("display_name", "DISPLAYNAME", "displayname")] = self.group_name()
        if self.chance(0.7):
            body[self.attr("members", CORE_GROUP)] = self.members()
        if self.chance(0.15):
            body[self.case(self.word())] = self.word()
        if gid is not None and self.chance(0.5):
            body["id"] = gid
        return body

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        req: dict[str, Any] = {"method": method, "path": path, "headers": {"content-type": "application/scim+json"}}
        if body is not None:
            req["body"] = body
        return req

    def single(self) -> tuple[str, dict[str, Any]]:
        """One non-Bulk write: (kind, request)."""
        roll = self.r.random()
        if roll < 0.32:
            return "patch-group", self.request("PATCH", f"{BASE}/Groups/{self.gid()}", self.patch_body(True))
        if roll < 0.6:
            return "patch-user", self.request("PATCH", f"{BASE}/Users/{self.uid()}", self.patch_body(False))
        if roll < 0.63:
            return "patch-scim11", self.request("PATCH", f"{BASE}/Groups/{self.gid()}", self.scim11_patch())
        if roll < 0.7:
            return "post-user", self.request("POST", f"{BASE}/Users", self.user_resource(None))
        if roll < 0.77:
            return "post-group", self.request("POST", f"{BASE}/Groups", self.group_resource(None))
        if roll < 0.83:
            uid = self.uid()
            return "put-user", self.request("PUT", f"{BASE}/Users/{uid}", self.user_resource(uid))
        if roll < 0.89:
            gid = self.gid()
            return "put-group", self.request("PUT", f"{BASE}/Groups/{gid}", self.group_resource(gid))
        if roll < 0.92:
            return "delete", self.request("DELETE", self.pick(f"{BASE}/Users/{self.uid()}", f"{BASE}/Groups/{self.gid()}"))
        return "bulk", self.request("POST", f"{BASE}/Bulk", self.bulk())

    def bulk(self) -> dict[str, Any]:
        ops: list[dict[str, Any]] = []
        created: list[tuple[str, str]] = []  # (type, bulkId)
        for i in range(self.r.randint(1, 4)):
            roll = self.r.random()
            method_case = self.pick("POST", "POST", "post")
            if roll < 0.25:
                bid = f"q{i}"
                ops.append({"method": method_case, "path": "/Users", "bulkId": bid, "data": self.user_resource(None)})
                created.append(("Users", bid))
            elif roll < 0.45:
                bid = f"q{i}"
                data = self.group_resource(None)
                if created and self.chance(0.7):
                    data["members"] = [{"value": f"bulkId:{self.pick(*[b for _, b in created])}"}]
                ops.append({"method": method_case, "path": "/Groups", "bulkId": bid, "data": data})
                created.append(("Groups", bid))
            elif roll < 0.8:
                groups = [b for t, b in created if t == "Groups"]
                target = f"bulkId:{self.pick(*groups)}" if groups and self.chance(0.5) else self.gid()
                body = self.patch_body(True)
                users = [b for t, b in created if t == "Users"]
                if users and self.chance(0.6):
                    body = {"schemas": [PATCH_OP], "Operations": [
                        self.patch_op("add", "members", [{"value": f"bulkId:{self.pick(*users)}"}])]}
                data: Any = body
                ops.append({"method": "PATCH", "path": f"/Groups/{target}", "data": data})
            elif roll < 0.93:
                ops.append({"method": "PATCH", "path": f"/Users/{self.uid()}", "data": self.patch_body(False)})
            else:
                ops.append({"method": "DELETE", "path": self.pick(f"/Users/{self.uid()}", f"/Groups/{self.gid()}")})
        return {"schemas": [BULK], "Operations": ops}


def writes(seed: int, n: int) -> list[dict[str, Any]]:
    """n writes, each {"n": index, "kind": ..., "request": HttpRequest-shaped dict}."""
    g = Gen(seed)
    out = []
    for i in range(n):
        kind, request = g.single()
        out.append({"n": i, "kind": kind, "request": request})
    return out


if __name__ == "__main__":
    import sys

    for w in writes(int(sys.argv[1]) if len(sys.argv) > 1 else 1, int(sys.argv[2]) if len(sys.argv) > 2 else 10):
        print(json.dumps(w))
