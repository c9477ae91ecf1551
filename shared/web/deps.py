"""FastAPI dependency aliases shared by the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.runtime import ServiceRuntime


async def get_runtime(request: Request) -> ServiceRuntime[Any]:
    """Async on purpose: FastAPI runs plain ``def`` dependencies in a thread pool."""
    runtime: ServiceRuntime[Any] = request.app.state.runtime
    return runtime


# a service types its own: ``Annotated[ServiceRuntime[ReportsSettings], Depends(get_runtime)]``
RuntimeDep = Annotated[ServiceRuntime[Any], Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.session_factory() as session:
        yield session


# closed before the answer is sent (scope="function"), so a database failure while closing still shapes the answer
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
