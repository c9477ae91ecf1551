"""Alembic environment of the notifications database (version table ``alembic_version_notifications``)."""

from notifications_service.models import metadata
from shared.db import run_alembic_env

run_alembic_env(metadata, version_table="alembic_version_notifications")
