"""Effective configuration: environment variables prefixed CONTACT_CENTER_, or a .env file."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CONTACT_CENTER_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(Path("var"), description="Where the embedded database and job queue live.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite under data_dir.")
    secret_key: SecretStr = Field(
        SecretStr(""), description="Signs session cookies; generated and kept under data_dir when empty."
    )
    public_base_url: str = Field(
        "http://127.0.0.1:8000", description="How providers reach us; webhook URLs are built from it."
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    redis_url: str = Field("", description="Redis for the job queue and live events; empty means embedded.")
    company_name: str = Field("Contact Center", description="`company.name` in message templates.")
    company_phone: str = Field("", description="`company.phone` in message templates.")
    kolmeya_token: SecretStr = Field(SecretStr(""), description="Kolmeya API token; empty starts the sandbox.")
    # WhatsApp Cloud API: with all four set, serve creates a channel for the number; without them it
    # starts the WhatsApp sandbox instead.
    whatsapp_access_token: SecretStr = Field(
        SecretStr(""), description="A system user's access token at Meta; empty (with any of the others) starts "
                                   "the WhatsApp sandbox."
    )
    whatsapp_app_secret: SecretStr = Field(
        SecretStr(""), description="The Meta app's secret: WhatsApp callbacks are signed with it."
    )
    whatsapp_phone_number_id: str = Field("", description="The number's id at Meta (WhatsApp Manager).")
    whatsapp_waba_id: str = Field("", description="The WhatsApp Business Account id (its templates).")
    dispatch_claim_timeout_seconds: float = Field(
        300.0, gt=0, description="How long a send may stay claimed before the sweeper treats its worker as "
                                 "stopped (never less than the provider's slowest possible request)."
    )
    dispatch_check_delay_seconds: float = Field(
        60.0, ge=0, description="How long after a send with an unknown outcome (a timeout, a crash, an "
                                "unreadable answer) the provider is asked whether it has the messages."
    )
    template_cpu_seconds: float = Field(
        1.0, gt=0, le=60, description="CPU time one template may take to compile or to render for one message."
    )
    template_max_output_bytes: int = Field(
        65536, gt=0, le=16 * 2**20,
        description="Largest message a template may render (UTF-8 bytes); also caps every text it builds.",
    )
    opt_out_keywords: str = Field(
        "SAIR,PARAR,PARA,PARE,STOP,CANCELAR,DESCADASTRAR",
        description="Comma-separated words (or short phrases) that, as a customer's whole reply, opt them out of "
                    "that kind of channel; compared without accents, case or surrounding punctuation. Empty: "
                    "replies opt no one out.",
    )
    opt_out_confirmation: str = Field(
        "Pronto: você não vai mais receber nossas mensagens por {canal}. Se mudar de ideia, é só falar com a gente.",
        description="Sent once, on the same channel, to a customer who opted out by replying a keyword; "
                    "{canal} becomes SMS or WhatsApp. Empty sends nothing.",
    )
    contact_import_max_bytes: int = Field(
        200 * 2**20, ge=1024, description="The largest CSV file the contacts page accepts for import (bytes)."
    )
    # Odoo partner sync (odoo/): with the URL, database, login and API key set, `contact-center odoo sync`
    # works and, with an interval, the job queue runs it periodically.
    odoo_url: str = Field("", description="The Odoo server, e.g. https://erp.example.com.br; empty: no Odoo sync.")
    odoo_database: str = Field("", description="The Odoo database name.")
    odoo_login: str = Field("", description="The Odoo user the sync logs in as.")
    odoo_api_key: SecretStr = Field(SecretStr(""), description="That user's API key (Odoo: Preferences > "
                                                             "Account Security); never shown.")
    odoo_fields: str = Field("", description="Odoo partner fields read into contact fields, comma-separated "
                                             "ODOO_FIELD=OUR_FIELD pairs, e.g. x_celular2=mobile,comment=notes.")
    odoo_sync_interval_minutes: int = Field(0, ge=0, le=7 * 24 * 60,
                                            description="Run the sync every this many minutes; 0: only by command.")
    odoo_chatter_notes: bool = Field(False, description="Post each message sent to or received from a contact "
                                                        "with an Odoo partner as a note in the partner's chatter.")
    odoo_timeout_seconds: float = Field(60.0, gt=0, le=600, description="How long one call to Odoo may take.")
    log_format: str = Field("text", description="text (one readable line per record) or json (one JSON object per "
                                                "line, for log collectors).")
    metrics_token: SecretStr = Field(
        SecretStr(""), description="Bearer token GET /metrics asks for; empty: no token (see metrics_allow)."
    )
    metrics_allow: str = Field(
        "", description="Comma-separated IP addresses or networks (CIDR) /metrics answers; with neither this nor "
                        "metrics_token, only this machine (127.0.0.1, ::1)."
    )
    retention_days: int = Field(
        0, ge=0, le=36500,
        description="Erase the texts and media of messages (and the raw provider callbacks) older than this many "
                    "days, by an hourly job; the message rows stay, so reports still count them. 0 keeps them.",
    )
    webhook_writer_process: bool = Field(
        True, description="Record provider callbacks in a child process of the server (faster on several "
                          "cores); false records them on a thread of the server."
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("odoo_url")
    @classmethod
    def _odoo_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        text = value.strip().lower()
        if text not in ("text", "json"):
            raise ValueError(f"formato de log desconhecido {value!r}: use text ou json")
        return text

    @field_validator("metrics_allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        from contact_center.metrics.access import parse_networks

        parse_networks(value)  # a typo would otherwise lock the scraper out, or let everyone in
        return value

    @field_validator("public_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("whatsapp_phone_number_id", "whatsapp_waba_id")
    @classmethod
    def _meta_id(cls, value: str) -> str:
        value = value.strip()
        if value and not (value.isascii() and value.isdigit() and len(value) <= 32):
            raise ValueError("must be the digits of the id Meta shows in WhatsApp Manager")
        return value

    @field_validator("opt_out_keywords")
    @classmethod
    def _keywords(cls, value: str) -> str:
        from contact_center.messaging.opt_out import parse_keywords

        parse_keywords(value)  # a keyword that is only punctuation could never match
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @property
    def whatsapp_configured(self) -> bool:
        return not self.whatsapp_missing()

    def whatsapp_missing(self) -> list[str]:
        """The WhatsApp settings still empty, by variable name."""
        values = {"whatsapp_access_token": self.whatsapp_access_token.get_secret_value(),
                  "whatsapp_app_secret": self.whatsapp_app_secret.get_secret_value(),
                  "whatsapp_phone_number_id": self.whatsapp_phone_number_id,
                  "whatsapp_waba_id": self.whatsapp_waba_id}
        return [f"{ENV_PREFIX}{name.upper()}" for name, value in values.items() if not value]

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'contact-center.db'}"

    def effective_secret_key(self) -> str:
        """The configured key, or one generated once and kept in data_dir (so sessions survive restarts)."""
        if self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


def load_settings(**overrides) -> Settings:
    """Build settings, turning pydantic's report into one line per bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{ENV_PREFIX}{field.upper()}: {message}")
        raise SettingsError("; ".join(problems)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()


def masked(settings: Settings) -> dict[str, str]:
    """Every setting as text, secrets replaced (URL passwords included)."""
    from sqlalchemy.engine import make_url

    shown: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            text = "********" if value.get_secret_value() else "(not set)"
        elif name in ("database_url", "redis_url") and value:
            text = _mask_url(value) if name == "redis_url" else make_url(value).render_as_string(hide_password=True)
        else:
            text = str(value) if value != "" else "(not set)"
        shown[f"{ENV_PREFIX}{name.upper()}"] = text
    shown["effective database"] = make_url(settings.effective_database_url).render_as_string(hide_password=True)
    return shown


def _mask_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
