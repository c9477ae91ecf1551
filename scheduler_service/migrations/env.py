"""Alembic environment of the scheduler database (version table ``alembic_version_scheduler``)."""

from scheduler_service.models import metadata
from shared.db import run_alembic_env

run_alembic_env(metadata, version_table="alembic_version_scheduler")
