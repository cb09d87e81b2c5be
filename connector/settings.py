"""Every knob, typed and documented. Env prefix LEADSCORE_, an optional env file, secrets as
SecretStr (never printed, never stored).

Precedence (highest first): explicit arguments, environment variables, the env file named by
LEADSCORE_ENV_FILE (default `./leadscore.env` when present), then the defaults below.

A `LEADSCORE_*` name that is no setting (a typo such as `LEADSCORE_HUBSPOT_URL`) is an error,
with the closest real name, rather than silently ignored.

The state DB lives in one place whatever the current directory: LEADSCORE_STATE_PATH, else
`$XDG_STATE_HOME/leadscore/state.db` (`~/.local/state/leadscore/state.db`); the Docker image
sets `/data/leadscore.db`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from connector.errors import ConfigError
from connector.resources import DEFAULTS_DIR, DEMO_DATA_DIR

ENV_PREFIX = "LEADSCORE_"
# LEADSCORE_* names read outside Settings: the env file's own name, the compiled build
# (setup.py), the webhook URL (`leadscore run --webhook-url`'s envvar)
OTHER_ENV_NAMES = frozenset({"LEADSCORE_ENV_FILE", "LEADSCORE_COMPILE", "LEADSCORE_WEBHOOK_URL"})


def default_state_path() -> Path:
    """`$XDG_STATE_HOME/leadscore/state.db`, else `~/.local/state/leadscore/state.db`: the same
    file from every directory (a relative default made a fresh DB wherever a command ran)."""
    base = os.environ.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "leadscore" / "state.db"


# the shipped defaults (config/ and fixtures/ of a checkout; inside the package once installed)
CONFIG_DIR = DEFAULTS_DIR
FIXTURES_DIR = DEMO_DATA_DIR


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEADSCORE_",
        env_file=os.environ.get("LEADSCORE_ENV_FILE", "leadscore.env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    crm: Literal["hubspot", "marketo"] = Field("hubspot", description="Which CRM to sync.")
    state_path: Path = Field(
        default_factory=default_state_path,
        description="SQLite state DB (created 0600); default $XDG_STATE_HOME/leadscore/state.db.",
    )
    allow_fresh_state: bool = Field(
        False,
        description="Let a new, empty state DB sync a portal whose contacts already carry our "
        "scores (normally refused: it would rewrite every contact).",
    )
    model_path: Path = Field(CONFIG_DIR / "model.yaml", description="The scoring model file.")

    # HubSpot
    hubspot_token: SecretStr | None = Field(None, description="Private-app access token.")
    hubspot_base_url: str = Field("https://api.hubapi.com", description="API host.")
    hubspot_client_secret: SecretStr | None = Field(None, description="App secret (webhooks v3).")
    hubspot_search_page_size: int = Field(200, ge=1, le=200)
    hubspot_write_batch: int = Field(100, ge=1, le=100)
    hubspot_search_per_second: float = Field(
        4.0, gt=0, description="Client-side pace of search calls (HubSpot allows ~5/s)."
    )
    hubspot_event_types: list[str] = Field(
        default_factory=lambda: ["e_visited_page", "e_submitted_form"],
        description="Events API types to read (custom pe<portal>_ types are added from config).",
    )

    # Marketo
    marketo_base_url: str = Field("", description="https://<munchkin>.mktorest.com")
    marketo_client_id: SecretStr | None = None
    marketo_client_secret: SecretStr | None = None
    marketo_write_batch: int = Field(300, ge=1, le=300)
    marketo_field_map: dict[str, str] = Field(
        default_factory=dict,
        description="Our property -> Marketo REST field, merged over the defaults (JSON, e.g. "
        '{"grade": "myGrade__c", "fit_score": "fitPoints__c"}; "" = do not write it).',
    )
    marketo_status_field: str = Field(
        "leadStatus", description="Field read as the lead status (sales' own signal)."
    )
    marketo_stage_values: dict[str, str] = Field(
        default_factory=dict,
        description="Our lifecycle stage -> status value written (merged over the defaults, "
        'e.g. {"marketingqualifiedlead": "MQL", "salesqualifiedlead": "SQL"}).',
    )
    marketo_status_stages: dict[str, str] = Field(
        default_factory=dict,
        description="Status value -> our lifecycle stage when reading (merged over the "
        'defaults, e.g. {"Sales Accepted": "salesqualifiedlead"}; unmapped values are never '
        "touched).",
    )
    marketo_activity_types: dict[str, str] = Field(
        default_factory=dict,
        description="Marketo activity type name -> our event type (merged over the defaults, "
        'e.g. {"Attended Webinar": "webinar_attended"}; "" = do not read it).',
    )
    marketo_backfill_days: float = Field(
        365.0, gt=0, description="First run: read lead changes and activities this far back."
    )
    marketo_rate_limit: int = Field(100, ge=1, description="Calls per rate window (606).")
    marketo_rate_window_seconds: float = Field(20.0, gt=0)
    marketo_export_poll_seconds: float = Field(
        10.0, gt=0, description="Wait between bulk-export status polls (backfill)."
    )

    # Sync behaviour
    lookback_minutes: float = Field(
        10.0, ge=0, description="Re-read this far behind the cursor (search index lag)."
    )
    events_lookback_days: float = Field(
        3.0,
        ge=0,
        le=365,
        description="Re-read engagement this far behind the events cursor: events that reach "
        "the CRM dated in the past (custom events sent with an earlier occurredAt, late "
        "imports, backdated Marketo activities); 0 = only LEADSCORE_LOOKBACK_MINUTES.",
    )
    request_timeout_seconds: float = Field(30.0, gt=0)
    retry_attempts: int = Field(5, ge=1, le=20)
    retry_max_seconds: float = Field(30.0, gt=0)
    write_retry_attempts: int = Field(3, ge=1, le=10)
    fail_on_dead_letters: bool = Field(
        False, description="Exit non-zero when a sync dead-letters records."
    )
    dry_run: bool = Field(False, description="Compute everything, write nothing to the CRM.")

    # Enrichment
    firmographics_path: Path | None = Field(
        FIXTURES_DIR / "firmographics.csv", description="Local firmographics CSV/JSON."
    )
    freemail_path: Path | None = Field(
        None, description="Free-mail overrides file (default: the shipped freemail.yaml)."
    )
    pdl_api_key: SecretStr | None = None
    apollo_api_key: SecretStr | None = None
    enrich_hit_ttl_days: float = 30
    enrich_miss_ttl_days: float = 10
    write_company_fields: bool = False
    accounts: bool = Field(
        False,
        description="Account-based scoring (the model's accounts: section): read companies "
        "and associations, score accounts, write account values on companies and contacts.",
    )

    # Worker
    sync_interval_minutes: float = Field(15.0, gt=0)
    rescore_interval_minutes: float = Field(60.0, gt=0)
    rescore_workers: int | None = Field(
        None, ge=1, description="Processes for a full rescore (unset: every core)."
    )
    http_host: str = Field("127.0.0.1", description="Bind address of /healthz and /metrics.")
    http_port: int = Field(9464, ge=0, le=65535)
    log_json: bool = False
    log_level: str = "INFO"

    def __repr__(self) -> str:  # SecretStr already masks; keep the repr short and safe
        return f"Settings(crm={self.crm!r}, state_path={str(self.state_path)!r})"


def state_path_label(path: Path) -> str:
    """The state DB path as commands show it, saying when it is the default location."""
    if path == default_state_path():
        return f"{path} (the default; LEADSCORE_STATE_PATH or --state to change)"
    return str(path)


def known_env_names() -> frozenset[str]:
    return frozenset(ENV_PREFIX + n.upper() for n in Settings.model_fields) | OTHER_ENV_NAMES


def unknown_env_names(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = None
) -> list[str]:
    """Every `LEADSCORE_*` name in the environment and in the env file that is no setting, as
    `NAME (where; did you mean OTHER?)`, sorted."""
    from dotenv import dotenv_values

    env = os.environ if environ is None else environ
    if env_file is None:
        env_file = Settings.model_config.get("env_file")  # type: ignore[assignment]
    sources: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        for name in dotenv_values(env_file):
            sources.setdefault(name.upper(), str(env_file))
    for name in env:
        sources[name.upper()] = "environment"
    known = known_env_names()
    suffixes = {k[len(ENV_PREFIX) :]: k for k in known}
    out = []
    for name, where in sorted(sources.items()):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        close = difflib.get_close_matches(name[len(ENV_PREFIX) :], suffixes, n=1, cutoff=0.6)
        hint = f"; did you mean {suffixes[close[0]]}?" if close else ""
        out.append(f"{name} ({where}{hint})")
    return out


def _unparsed(exc: SettingsError) -> str:
    """`LEADSCORE_NAME: not valid JSON (the parser's reason)` for pydantic-settings' error,
    which names the field in its text and keeps the parser's error as its cause."""
    found = re.search(r'field "(\w+)"', str(exc))
    name = f"LEADSCORE_{found.group(1).upper()}" if found else "a setting"
    why = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
    return f"{name}: not valid JSON{why}"


def load_settings(**overrides: object) -> Settings:
    """Build settings; a bad configuration lists all its errors at once, by name: unknown
    `LEADSCORE_*` names (with the closest real one) and invalid values."""
    lines = [f"unknown setting {u}" for u in unknown_env_names()]
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            lines.append(f"LEADSCORE_{name.upper()}: {err['msg']}")
        settings = None
    except SettingsError as exc:  # a JSON-valued setting that is not JSON
        lines.append(_unparsed(exc))
        settings = None
    if lines:
        raise ConfigError("invalid settings: " + "; ".join(lines))
    assert settings is not None
    return settings
