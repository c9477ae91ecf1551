"""The schedules use cases refuse what breaks their limits with a domain error, before anything is stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scheduler_service import schedules
from scheduler_service.schedules import update_schedule
from scheduler_service.schemas import SchedulePatch
from scheduler_service.settings import ScheduleLimits
from shared.domain_errors import InvalidRequest
from tests.unit.scheduler_service.fakes import InMemorySchedulesStore

NOW = datetime(2026, 3, 11, 12, tzinfo=UTC)


def test_a_payload_over_the_limit_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match=r"payload: .* more than the limit of 16"):
        schedules._within_limits(ScheduleLimits(max_payload_bytes=16), "0 0 * * *", "UTC", {"report_date": "2026-03-11"}, NOW)


def test_a_rule_firing_more_often_than_the_limit_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="cron: fires 60 s apart"):
        schedules._within_limits(ScheduleLimits(min_interval_s=300), "* * * * *", "UTC", {}, NOW)


async def test_a_patch_setting_a_field_to_null_is_refused_before_the_database_is_touched() -> None:
    with pytest.raises(InvalidRequest, match="enabled: may be left out, not null"):
        await update_schedule(
            InMemorySchedulesStore(NOW), "nightly", SchedulePatch.model_validate({"enabled": None}), ScheduleLimits(), now=NOW
        )
