"""Settings: the shipped example loads, secrets stay masked, bad values are all listed by name."""

from __future__ import annotations

import pytest

from connector.errors import ConfigError
from connector.settings import CONFIG_DIR, default_state_path, load_settings


def test_the_example_env_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSCORE_ENV_FILE", str(CONFIG_DIR / "leadscore.env.example"))
    from connector.settings import Settings

    s = Settings(_env_file=str(CONFIG_DIR / "leadscore.env.example"))  # type: ignore[call-arg]
    # a copy used outside Docker keeps the default state DB, loopback and plain logs (it set
    # the image's /data/leadscore.db, 0.0.0.0 and JSON logs: a laptop got a /data directory)
    assert (s.crm, s.state_path, s.sync_interval_minutes) == (
        "hubspot",
        default_state_path(),
        15,
    )
    assert (s.http_host, s.http_port, s.log_json) == ("127.0.0.1", 9464, False)
    assert s.hubspot_token is not None
    assert s.hubspot_token.get_secret_value() == "pat-na1-xxxxxxxx"
    assert "pat-na1" not in repr(s) and "pat-na1" not in str(s.hubspot_token)


def test_bad_settings_list_every_error_by_variable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSCORE_CRM", "salesforce")
    monkeypatch.setenv("LEADSCORE_HUBSPOT_WRITE_BATCH", "500")
    monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", "pat-secret-value")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "LEADSCORE_CRM:" in message
    assert "LEADSCORE_HUBSPOT_WRITE_BATCH:" in message
    assert "pat-secret-value" not in message
