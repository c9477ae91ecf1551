"""Constraints shared by the services' request parameters."""

from __future__ import annotations

from shared.web.errors import ServiceError

# PostgreSQL's text cannot hold a NUL character: a parameter that carries one is refused (422), not stored
NO_NUL = r"^[^\x00]*$"


def within_depth(page: int, count: int, depth_limit: int) -> None:
    """Refuses (422, naming the deepest page) a page past the first ``depth_limit`` rows.

    A page is an OFFSET, and the database reads and throws away every row before it:
    ``page=1000000`` would cost a scan of up to 10^9 rows. Filters reach further back.
    """
    deepest = max(1, depth_limit // count)
    if page > deepest:
        raise ServiceError(
            422,
            f"page: at most {deepest} with count={count} (pages reach the first {depth_limit} rows); narrow the filters to go further",
            code="page_too_deep",
        )


def ids_or_all(ids: object, everything: bool) -> None:
    """An admin selection names either ``ids`` or ``"all": true``, never both, never neither."""
    if (ids is not None) == everything:
        raise ValueError('give either "ids" or "all": true')
