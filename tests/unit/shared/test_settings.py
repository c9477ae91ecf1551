import pytest
from sqlalchemy.engine import make_url

from notifications_service.settings import NotificationsSettings
from orders_service.settings import OrdersSettings
from reports_service.settings import ReportsSettings
from scheduler_service.settings import SchedulerSettings
from shared.preflight import service_settings
from shared.settings import BaseServiceSettings, SettingsError, load_settings


def test_plain_postgres_url_gets_the_asyncpg_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_DATABASE_URL", "postgresql://u:p@db:5432/orders")
    settings = load_settings(OrdersSettings)
    assert settings.database_url.get_secret_value() == "postgresql+asyncpg://u:p@db:5432/orders"


def test_a_malformed_variable_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_DATABASE_URL", "mysql://nope")
    monkeypatch.setenv("BROKER_URL", "http://not-amqp")
    with pytest.raises(SettingsError) as raised:
        load_settings(OrdersSettings)
    assert "ORDERS_DATABASE_URL" in str(raised.value)
    assert "BROKER_URL" in str(raised.value)


def test_default_broker_credentials_are_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("BROKER_URL", "amqp://guest:guest@rabbit:5672/")
    with pytest.raises(SettingsError, match="guest"):
        load_settings(OrdersSettings)


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_URL", "amqp://app:s3cret@rabbit:5672/")
    assert "s3cret" not in repr(load_settings(OrdersSettings))


@pytest.mark.parametrize(
    ("settings_class", "variable"),
    [
        (OrdersSettings, "ORDERS_LIST_COUNT_LIMIT"),
        (ReportsSettings, "REPORTS_LIST_COUNT_LIMIT"),
        (SchedulerSettings, "SCHEDULER_LIST_COUNT_LIMIT"),
        (NotificationsSettings, "NOTIFICATIONS_LIST_COUNT_LIMIT"),
    ],
)
def test_each_service_reads_its_own_listing_count_limit(
    monkeypatch: pytest.MonkeyPatch, settings_class: type[BaseServiceSettings], variable: str
) -> None:
    assert load_settings(settings_class).list_count_limit == 1000
    monkeypatch.setenv(variable, "50")
    assert load_settings(settings_class).list_count_limit == 50


def test_an_empty_optional_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFICATIONS_REPORTS_TO", "")
    monkeypatch.setenv("NOTIFICATIONS_SMTP_USERNAME", "")
    monkeypatch.setenv("INTERNAL_TOKEN", "")
    settings = load_settings(NotificationsSettings)
    assert (settings.reports_to, settings.smtp_username, settings.internal_token) == (None, None, None)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("ORDERS_DATABASE_URL", "postgresql://app:change-me@db:5432/orders", "ORDERS_DATABASE_URL: its password is a placeholder"),
        ("ORDERS_DATABASE_URL", "postgresql://app:short@db:5432/orders", "ORDERS_DATABASE_URL: its password is shorter than 16"),
        ("BROKER_URL", "amqp://orders:change-me@rabbit:5672/", "BROKER_URL: its password is a placeholder"),
        ("INTERNAL_TOKEN", "change-me-change-me", "INTERNAL_TOKEN must be set"),
    ],
)
def test_production_refuses_placeholder_secrets_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("INTERNAL_TOKEN", "a-token-of-the-deployment")
    monkeypatch.setenv("BROKER_URL", "amqp://orders:a-long-broker-password@rabbit:5672/")
    monkeypatch.setenv("ORDERS_DATABASE_URL", "postgresql://app:a-long-database-password@db:5432/orders")
    assert load_settings(OrdersSettings).environment == "production"
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=reason):
        load_settings(OrdersSettings)


def test_preflight_reads_each_services_own_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_DATABASE_URL", "postgresql://postgres@orders-db:5432/orders")
    monkeypatch.setenv("REPORTS_DATABASE_URL", "postgresql://postgres@reports-db:5432/reports")
    hosts = [make_url(service_settings(prefix).database_url.get_secret_value()).host for prefix in ("ORDERS_", "REPORTS_")]
    assert hosts == ["orders-db", "reports-db"]
