"""Alembic environment of the reports database (version table ``alembic_version_reports``)."""

from reports_service.models import metadata
from shared.db import run_alembic_env

run_alembic_env(metadata, version_table="alembic_version_reports")
