from __future__ import annotations

import pytest

from gateway.auth import ApiKeys
from gateway.settings import GatewaySettings, parse_api_keys
from shared.settings import SettingsError, load_settings


def test_the_matching_client_is_named_and_wrong_or_missing_keys_are_not() -> None:
    keys = ApiKeys({"web": "web-key-123", "batch": "batch-key-456"})
    assert keys.client_for(b"batch-key-456") == "batch"
    assert keys.client_for(b"batch-key-45") is None
    assert keys.client_for(b"") is None
    assert keys.client_for(None) is None


def test_keys_are_parsed_from_name_key_pairs_and_bare_keys() -> None:
    assert parse_api_keys("web:web-key-123, batch-key-456") == {"web": "web-key-123", "client2": "batch-key-456"}
    with pytest.raises(ValueError, match="shorter than 8"):
        parse_api_keys("web:short")
    with pytest.raises(ValueError, match="twice"):
        parse_api_keys("web:web-key-123,web:web-key-456")


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
    with pytest.raises(SettingsError, match="development key"):
        load_settings(GatewaySettings)
    monkeypatch.setenv("GATEWAY_API_KEYS", "web:a-real-secret-key")
    assert load_settings(GatewaySettings).client_keys() == {"web": "a-real-secret-key"}
