"""The failures a use case reports, named by what went wrong, not by an HTTP status.

Use cases raise these; the web layer (``shared.web.errors``) maps each kind to its status
and problem ``code``, and a command line or a consumer can catch them as they are.
"""

from __future__ import annotations


class DomainError(Exception):
    """An expected failure of a use case, with a reason a person can read."""

    code = "domain_error"

    def __init__(self, detail: str, *, code: str | None = None, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s  # the request may succeed if sent again this much later
        if code is not None:
            self.code = code


class InvalidRequest(DomainError):
    """The request breaks a rule of the domain (a date in the future, a total too large)."""

    code = "validation_error"


class NotFound(DomainError):
    """What the request names does not exist."""

    code = "not_found"


class Unavailable(DomainError):
    """Another service the use case needs did not answer; the request may succeed later."""

    code = "dependency_unavailable"


class Conflict(DomainError):
    """The request contradicts the current state (a name taken, a key reused)."""

    code = "conflict"
