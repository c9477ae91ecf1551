"""Alembic environment of the orders database (version table ``alembic_version_orders``)."""

from orders_service.models import metadata
from shared.db import run_alembic_env

run_alembic_env(metadata, version_table="alembic_version_orders")
