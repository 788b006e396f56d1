from __future__ import annotations

import pytest

from contact_center.settings import Settings, SettingsError, load_settings, masked


def test_defaults_use_sqlite_under_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.effective_database_url == "sqlite:///var/contact-center.db"
    assert settings.public_base_url == "http://127.0.0.1:8000"


def test_environment_and_dotenv_are_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CONTACT_CENTER_LOG_LEVEL=debug\nCONTACT_CENTER_PUBLIC_BASE_URL=https://cc.example.com/\n")
    monkeypatch.setenv("CONTACT_CENTER_DATABASE_URL", "postgresql+psycopg://cc:pw@db/cc")
    settings = load_settings()
    assert settings.log_level == "DEBUG"
    assert settings.public_base_url == "https://cc.example.com"
    assert settings.effective_database_url == "postgresql+psycopg://cc:pw@db/cc"


@pytest.mark.parametrize(
    "variable,value,expected",
    [
        ("CONTACT_CENTER_LOG_LEVEL", "loud", "CONTACT_CENTER_LOG_LEVEL: must be one of"),
        ("CONTACT_CENTER_PUBLIC_BASE_URL", "cc.example.com", "CONTACT_CENTER_PUBLIC_BASE_URL: must start with http"),
        ("CONTACT_CENTER_DATABASE_URL", "mysql://x", "CONTACT_CENTER_DATABASE_URL: must be a sqlite"),
    ],
)
def test_a_malformed_setting_names_the_variable(monkeypatch, tmp_path, variable, value, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_masked_hides_secrets_and_passwords(tmp_path):
    settings = Settings(
        _env_file=None, data_dir=tmp_path, secret_key="super-secret-value",
        database_url="postgresql+psycopg://cc:hunter22@db/cc", redis_url="redis://:redispw@cache:6379/0",
        kolmeya_token="kolmeya-token-value",
    )
    shown = "\n".join(f"{k}={v}" for k, v in masked(settings).items())
    for secret in ("super-secret-value", "hunter22", "redispw", "kolmeya-token-value"):
        assert secret not in shown
    assert "CONTACT_CENTER_SECRET_KEY=********" in shown


def test_generated_secret_key_is_kept(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path)
    first = settings.effective_secret_key()
    assert len(first) > 40
    assert Settings(_env_file=None, data_dir=tmp_path).effective_secret_key() == first
    assert oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"
