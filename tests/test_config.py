from __future__ import annotations

import pytest

from picloud.config import Settings, load_settings
from picloud.errors import ConfigError


def test_defaults_need_nothing_configured() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert (settings.http_host, settings.http_port, settings.data_dir) == (
        "127.0.0.1",
        8080,
        ".picloud",
    )
    assert settings.max_trigger_depth == 8
    assert settings.dead_letter_retention_days == 30
    assert settings.abandoned_executions_retention_days == 7
    assert (settings.script_cache_size, settings.module_cache_size) == (256, 512)


def test_values_are_read_and_typed() -> None:
    settings = load_settings(
        {
            "PICLOUD_HTTP_PORT": "9000",
            "PICLOUD_DATABASE_URL": "postgresql://db/x",
            "PICLOUD_TRIGGER_RETRY_JITTER": "0.5",
            "PICLOUD_TEST_DATABASE_URL": "ignored: read by the tests",
            "HOME": "/root",
        }
    )
    assert settings.http_port == 9000
    assert settings.database_url == "postgresql://db/x"
    assert settings.trigger_retry_jitter == 0.5


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PICLOUD_HTTP_PORT": "eighty"}, "PICLOUD_HTTP_PORT='eighty'"),
        ({"PICLOUD_HTTP_PORT": "70000"}, "PICLOUD_HTTP_PORT"),
        ({"PICLOUD_SCRIPT_TIMEOUT_MS": "0"}, "PICLOUD_SCRIPT_TIMEOUT_MS"),
        ({"PICLOUD_LOG_LEVEL": "LOUD"}, "PICLOUD_LOG_LEVEL"),
        ({"PICLOUD_TRIGGER_RETRY_JITTER": "1.5"}, "PICLOUD_TRIGGER_RETRY_JITTER"),
        ({"PICLOUD_HTTP_PROT": "80"}, "unknown setting PICLOUD_HTTP_PROT"),
    ],
)
def test_malformed_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert names in str(raised.value)
