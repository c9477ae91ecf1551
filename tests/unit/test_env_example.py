"""``.env.example`` documents every variable the processes read, and nothing they do not."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices

from gateway.settings import GatewaySettings
from notifications_service.settings import NotificationsSettings
from orders_service.settings import OrdersSettings
from reports_service.settings import ReportsSettings
from scheduler_service.settings import SchedulerSettings
from shared.settings import ProcessSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: list[type[ProcessSettings]] = [OrdersSettings, ReportsSettings, SchedulerSettings, NotificationsSettings, GatewaySettings]
INTERNAL = {"service_name"}  # fixed per service, not configuration


def variables_read(settings_class: type[ProcessSettings]) -> set[str]:
    prefix = settings_class.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in settings_class.model_fields.items():
        if field_name in INTERNAL:
            continue
        if isinstance(field.validation_alias, AliasChoices):
            names.update(str(choice).upper() for choice in field.validation_alias.choices)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def documented() -> dict[str, str]:
    """Variable -> the comment lines above it, for the part every process reads (compose-only variables excluded)."""
    text = (ROOT / ".env.example").read_text().split("# --- docker compose only")[0]
    variables: dict[str, str] = {}
    comment: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            comment.append(line)
        elif "=" in line:
            variables[line.split("=", 1)[0]] = "\n".join(comment)
        else:
            comment = []
    return variables


def test_every_variable_read_is_documented_with_a_comment() -> None:
    read = set().union(*(variables_read(settings_class) for settings_class in SETTINGS))
    documented_variables = documented()
    assert read - set(documented_variables) == set()
    undocumented = [name for name, comment in documented_variables.items() if not comment.strip("# \n")]
    assert undocumented == []


def test_nothing_documented_is_ignored_by_every_process() -> None:
    read = set().union(*(variables_read(settings_class) for settings_class in SETTINGS))
    assert set(documented()) - read == set()
