from __future__ import annotations

import pytest

from gateway.auth import ApiKeys, Client, ClientKey, parse_api_keys
from gateway.settings import GatewaySettings
from shared.settings import SettingsError, load_settings


def test_the_matching_client_is_named_and_wrong_or_missing_keys_are_not() -> None:
    web, batch = Client("web", frozenset({"shop"})), Client("batch", frozenset({"operator"}))
    keys = ApiKeys([ClientKey(web, "web-key-123"), ClientKey(batch, "batch-key-456")])
    assert keys.client_for(b"batch-key-456") == batch
    assert keys.client_for(b"batch-key-45") is None
    assert keys.client_for(b"") is None
    assert keys.client_for(None) is None


def test_keys_are_parsed_with_their_roles_and_entries_without_roles_are_operators() -> None:
    parsed = parse_api_keys("web:web-key-123:shop, bi:bi-key-1234:analyst+shop, ops:ops-key-123, batch-key-456")
    assert [(entry.client.name, entry.key, entry.client.roles_header) for entry in parsed] == [
        ("web", "web-key-123", "shop"),
        ("bi", "bi-key-1234", "shop+analyst"),
        ("ops", "ops-key-123", "operator"),
        ("client4", "batch-key-456", "operator"),
    ]
    with pytest.raises(ValueError, match="shorter than 8"):
        parse_api_keys("web:short")
    with pytest.raises(ValueError, match="twice"):
        parse_api_keys("web:web-key-123,web:web-key-456")
    with pytest.raises(ValueError, match="unknown role"):
        parse_api_keys("web:web-key-123:admin")
    with pytest.raises(ValueError, match="name:key:roles"):
        parse_api_keys("web:web-key-123:shop:extra")


def test_upstream_lists_come_from_comma_separated_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_REPORTS_URLS", "http://127.0.0.1:8002, http://127.0.0.1:8012/")
    settings = load_settings(GatewaySettings)
    assert settings.reports_urls == ("http://127.0.0.1:8002", "http://127.0.0.1:8012")


def test_bad_settings_stop_start_up_naming_the_variable_and_not_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ORDERS_URLS", "ftp://nowhere")
    monkeypatch.setenv("GATEWAY_API_KEYS", "web:tiny")
    with pytest.raises(SettingsError) as raised:
        load_settings(GatewaySettings)
    message = str(raised.value)
    assert "GATEWAY_ORDERS_URLS" in message
    assert "GATEWAY_API_KEYS" in message
    assert "tiny" not in message


def test_production_refuses_the_development_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("INTERNAL_TOKEN", "a-token-of-the-deployment")
    with pytest.raises(SettingsError, match="development key"):
        load_settings(GatewaySettings)
    monkeypatch.setenv("GATEWAY_API_KEYS", "web:a-real-secret-key")
    assert [entry.key for entry in load_settings(GatewaySettings).client_keys()] == ["a-real-secret-key"]


def test_production_needs_an_internal_token_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("GATEWAY_API_KEYS", "web:a-real-secret-key")
    with pytest.raises(SettingsError, match="INTERNAL_TOKEN"):
        load_settings(GatewaySettings)
    monkeypatch.setenv("INTERNAL_TOKEN", "change-me-to-a-long-secret")
    with pytest.raises(SettingsError, match="INTERNAL_TOKEN"):
        load_settings(GatewaySettings)
    monkeypatch.setenv("INTERNAL_TOKEN", "short")
    with pytest.raises(SettingsError, match=r"INTERNAL_TOKEN: .*16 characters"):
        load_settings(GatewaySettings)


def test_production_refuses_a_short_or_placeholder_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("INTERNAL_TOKEN", "a-token-of-the-deployment")
    monkeypatch.setenv("GATEWAY_API_KEYS", "web:a-real-secret-key-1:shop,bi:change-me-later-please:analyst")
    with pytest.raises(SettingsError, match="the key of 'bi' is a placeholder"):
        load_settings(GatewaySettings)
    monkeypatch.setenv("GATEWAY_API_KEYS", "web:short-key")
    with pytest.raises(SettingsError, match="the key of 'web' is shorter than 16"):
        load_settings(GatewaySettings)
