"""Which role may call which route: the gateway's one table of authorization rules.

``shop`` places and cancels orders and reads its own orders and their notifications; ``analyst``
reads reports, tasks and schedules and requests reports; ``operator`` may call anything.
A route that no rule names needs ``operator``, so a new endpoint is closed until a rule
opens it; ``/admin/...`` needs it whatever the rules say.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.auth import Client

READS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Rule:
    upstream: str
    methods: frozenset[str]
    matches: Callable[[str], bool]
    role: str


def _exactly(path: str) -> Callable[[str], bool]:
    return lambda candidate: candidate == path or candidate == path + "/"


def _one_below(prefix: str) -> Callable[[str], bool]:
    """``/orders/<id>``: one segment under the prefix, nothing further."""
    return lambda candidate: candidate.startswith(prefix + "/") and "/" not in candidate[len(prefix) + 1 :].rstrip("/")


def _action_of_one(prefix: str, action: str) -> Callable[[str], bool]:
    """``/orders/<id>/cancel``: an action on one resource under the prefix."""
    one = _one_below(prefix)
    suffix = "/" + action
    return lambda candidate: candidate.rstrip("/").endswith(suffix) and one(candidate.rstrip("/").removesuffix(suffix))


def _anything(_: str) -> bool:
    return True


RULES: tuple[Rule, ...] = (
    Rule("orders", frozenset({"POST"}), _exactly("/orders"), "shop"),
    Rule("orders", READS, _exactly("/orders"), "shop"),
    Rule("orders", READS, _one_below("/orders"), "shop"),
    Rule("orders", frozenset({"POST"}), _action_of_one("/orders", "cancel"), "shop"),
    Rule("notifications", READS, _anything, "shop"),
    Rule("reports", READS, _anything, "analyst"),
    Rule("reports", frozenset({"POST"}), _exactly("/report/generate"), "analyst"),
    Rule("scheduler", READS, _anything, "analyst"),
)


def required_role(upstream: str, method: str, path: str) -> str:
    """The least role that may make this call (``operator`` for anything not listed, and for ``/admin/...`` always)."""
    if path == "/admin" or path.startswith("/admin/"):
        return "operator"
    for rule in RULES:
        if rule.upstream == upstream and method in rule.methods and rule.matches(path):
            return rule.role
    return "operator"


def refusal(client: Client, upstream: str, method: str, path: str) -> str | None:
    """Why the client may not make this call, or None when it may."""
    if "operator" in client.roles:
        return None
    role = required_role(upstream, method, path)
    if role in client.roles:
        return None
    return f"{method} {path} needs the {role} role; client {client.name!r} has {client.roles_header}"
