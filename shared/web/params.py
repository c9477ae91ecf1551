"""Constraints shared by the services' request parameters."""

from __future__ import annotations

# PostgreSQL's text cannot hold a NUL character: a parameter that carries one is refused (422), not stored
NO_NUL = r"^[^\x00]*$"
