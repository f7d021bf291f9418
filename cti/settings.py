"""One typed settings object: defaults, then a TOML file, then the environment.

Environment variables are named ``CTI_<SECTION>__<KEY>`` (for example
``CTI_AMI__SECRET``); they win over the file so secrets never need to sit in it.
Validation happens once, at start, and every error names the bad key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
)

ENV_PREFIX = "CTI_"
ENV_SEPARATOR = "__"
CONFIG_ENV = "CTI_CONFIG"


class SettingsError(Exception):
    """Raised when the configuration cannot be loaded; the message names every bad key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmiSettings(_Section):
    """Asterisk Manager Interface connection (the adapter's timings are tunable for tests)."""

    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "cti"
    secret: SecretStr = SecretStr("")
    connect_timeout: float = Field(5.0, gt=0)
    action_timeout: float = Field(10.0, gt=0)
    ping_interval: float = Field(5.0, gt=0)
    ping_timeout: float = Field(3.0, gt=0)
    reconnect_min: float = Field(0.5, gt=0)
    reconnect_max: float = Field(5.0, gt=0)  # a local Asterisk back from a restart is worth trying often


class AgiSettings(_Section):
    """Our FastAGI server; Asterisk connects to ``agi://<advertised_host>:<port>/<script>``."""

    host: str = "127.0.0.1"
    port: int = Field(4573, ge=0, le=65535)
    advertised_host: str = "127.0.0.1"
    command_timeout: float = Field(30.0, gt=0)
    env_timeout: float = Field(5.0, gt=0)


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class ProcessSettings(_Section):
    """The server process itself. ``malloc_arenas``: at most this many glibc malloc arenas (0: glibc's default);
    ``malloc_mmap_threshold_kib``: blocks this large or larger get pages of their own (0: glibc's moving
    threshold); ``malloc_trim_every_s``: hand the heap's free pages back to the system this often (0: never);
    see cti/allocator.py for why. ``gc_freeze``: once started, move the objects the process keeps for life out of
    reach of Python's cyclic collector, whose full passes otherwise walk them all while calls wait
    (cti/collector.py)."""

    malloc_arenas: int = Field(1, ge=0, le=64)
    malloc_mmap_threshold_kib: int = Field(128, ge=0, le=32 << 10)
    malloc_trim_every_s: float = Field(60.0, ge=0, le=86_400)
    gc_freeze: bool = True


class DatabaseSettings(_Section):
    """``connect_timeout_s`` and ``command_timeout_s`` (PostgreSQL) bound how long a step of a call can wait on a
    database that does not answer (a network losing packets): the caller then gets the outage path, not silence.
    ``sqlite_cache_kib``: each SQLite connection's page cache (see ``cti.db.engine._sqlite_pragmas`` for why it is
    small)."""

    url: str = "sqlite+aiosqlite:///var/cti.sqlite3"
    echo: bool = False
    connect_timeout_s: float = Field(5.0, gt=0, le=120)
    command_timeout_s: float = Field(15.0, gt=0, le=3600)
    sqlite_cache_kib: int = Field(256, ge=64, le=1 << 20)

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        allowed = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
        if not value.startswith(allowed):
            raise ValueError(f"must start with one of {', '.join(allowed)}")
        return value


class StateSettings(_Section):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "cti:"


class PathSettings(_Section):
    """Media must be visible to Asterisk at the same absolute path (bind mount or shared volume)."""

    media_dir: Path = Path("/var/lib/cti/media")

    @property
    def prompts_dir(self) -> Path:
        return self.media_dir / "prompts"

    @property
    def recordings_dir(self) -> Path:
        return self.media_dir / "recordings"


RoleName = Literal["admin", "supervisor", "agent"]


class ApiToken(_Section):
    """An API token that stops working at ``expires`` (an instant with its offset: a naive one is ambiguous)."""

    role: RoleName
    expires: AwareDatetime | None = None


def _token_form(value: Any) -> str:
    """A string is the old form (a role); anything else must be the table: one branch, one clear error."""
    return "role" if isinstance(value, str) else "table"


TokenSpec = Annotated[
    Annotated[RoleName, Tag("role")] | Annotated[ApiToken, Tag("table")], Discriminator(_token_form)
]


class SecuritySettings(_Section):
    """API tokens map a secret to a role, or to ``{ role, expires }``; they come from the file or
    ``CTI_SECURITY__API_TOKENS``. Failed logins are limited per username and per client address over
    ``login_window_s`` (docs/SECURITY.md)."""

    api_tokens: dict[str, TokenSpec] = Field(default_factory=dict)
    url_signing_key: SecretStr = SecretStr("")  # signed media URLs (audio players); random per process if empty
    session_ttl_s: int = Field(43200, ge=300, le=7 * 86400)  # a login session's absolute lifetime
    login_window_s: int = Field(300, ge=10, le=86400)
    login_failures_per_user: int = Field(5, ge=1, le=1000)
    login_failures_per_address: int = Field(30, ge=1, le=100_000)
    trusted_proxies: list[str] = Field(default_factory=list)  # reverse proxies whose X-Forwarded-For is read

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        from cti.http.client_address import parse_networks  # the one parser; imported late (http imports us)

        parse_networks(value)
        return value

    @field_validator("api_tokens")
    @classmethod
    def _long_tokens(cls, value: dict[str, TokenSpec]) -> dict[str, TokenSpec]:
        short = [t[:4] + "..." for t in value if len(t) < 24]
        if short:
            raise ValueError(f"tokens must be at least 24 characters (too short: {', '.join(short)})")
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The tokens are secrets like ``SecretStr`` ones: a repr (a traceback, a log) shows their start only."""
        for name, value in super().__repr_args__():
            if name == "api_tokens":
                value = {token[:4] + "...": spec for token, spec in self.api_tokens.items()}
            yield name, value

    def token_roles(self) -> dict[str, str]:
        """Every configured token and its role, expired ones included (the middleware refuses those)."""
        return {token: spec if isinstance(spec, str) else spec.role for token, spec in self.api_tokens.items()}

    def token_expiry(self) -> dict[str, datetime]:
        """The tokens that have an expiry, and when it is."""
        return {token: spec.expires for token, spec in self.api_tokens.items()
                if isinstance(spec, ApiToken) and spec.expires is not None}


class AsteriskSettings(_Section):
    """What the rendered Asterisk configuration needs to know (see ``asterisk-config/``)."""

    sip_bind: str = "127.0.0.1:5060"
    inbound_context: str = "from-pstn"
    default_language: Literal["en", "fr"] = "en"
    sip_secret: SecretStr = SecretStr("")


class SlaTarget(_Section):
    response_hours: float = Field(gt=0)
    resolve_hours: float = Field(gt=0)


def _default_sla() -> dict[str, SlaTarget]:
    return {
        "standard": SlaTarget(response_hours=8, resolve_hours=72),
        "gold": SlaTarget(response_hours=2, resolve_hours=24),
        "platinum": SlaTarget(response_hours=1, resolve_hours=8),
    }


class TicketSettings(_Section):
    """Ticket numbering, SLA targets per contract level, and automatic tickets for lost calls."""

    reference_prefix: str = Field("HD", pattern=r"^[A-Z]{1,8}$")
    sla: dict[str, SlaTarget] = Field(default_factory=_default_sla)
    auto_missed_calls: bool = False
    auto_abandoned_calls: bool = False


class VoicemailSettings(_Section):
    max_length_s: int = Field(180, ge=5, le=1800)
    silence_s: int = Field(5, ge=0, le=60)
    beep: bool = True
    allow_rerecord: bool = True


class TranscriptionSettings(_Section):
    """Vosk models are directories (``vosk.Model(model_path=...)``), one per language, never downloaded at run time."""

    models_dir: Path = Path("/var/lib/cti/models")
    models: dict[str, Path] = Field(default_factory=dict)  # language -> model directory, overrides models_dir/<lang>
    workers: int = Field(2, ge=1, le=32)
    max_attempts: int = Field(5, ge=1, le=50)
    retry_base_s: float = Field(5.0, gt=0)
    lease_s: float = Field(300.0, gt=0)
    low_confidence: float = Field(0.6, ge=0, le=1)
    max_audio_s: int = Field(900, ge=1)


class IvrSettings(_Section):
    """Caller numbers are normalised to E.164 with ``default_region`` (national formats like 06 12 34 56 78)."""

    default_region: str = Field("FR", pattern=r"^[A-Z]{2}$")


def _default_contract_priority() -> dict[str, int]:
    return {"standard": 0, "gold": 10, "platinum": 20}


class AcdSettings(_Section):
    """Caller priority = the IVR's (enqueue node) + the contract's + the VIP bonus; higher is answered first.

    ``node_id`` names this server among several sharing Redis (default: host name and process id).
    ``preferred_agent_days``: the last agent who answered a caller is preferred for calls within that many days.
    """

    contract_priority: dict[str, int] = Field(default_factory=_default_contract_priority)
    vip_priority: int = Field(30, ge=0, le=1000)
    node_id: str = Field("", pattern=r"^[A-Za-z0-9_.-]{0,64}$")
    preferred_agent_days: int = Field(30, ge=0, le=365)


class AgentsSettings(_Section):
    """The agent desktop: the outcomes an agent picks after a call, and where click-to-dial calls go out.

    ``outbound_context`` is the dialplan context an agent's own phone dials through (``cti-agents`` in the
    rendered configuration); click-to-dial rings the agent's phone, then dials the number there.
    """

    outcomes: tuple[str, ...] = ("resolved", "ticket", "callback", "transferred", "wrong_number", "other")
    outbound_context: str = Field("cti-agents", pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @field_validator("outcomes")
    @classmethod
    def _outcome_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in value if not name or len(name) > 32 or not name.replace("_", "").isalnum()]
        if bad or not value or len(set(value)) != len(value):
            raise ValueError("outcomes: 1 or more distinct names of letters, digits and _ (at most 32 each)")
        return value


class SmtpSettings(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    username: str = ""
    password: SecretStr = SecretStr("")
    starttls: bool = False
    sender: str = "helpdesk@localhost"
    timeout_s: float = Field(10.0, gt=0)


class SupervisionSettings(_Section):
    """The wallboard's and reports' figures: the desk's time zone ("today", report days and hours) and the
    thresholds past which a figure turns red. Percentages are 0-100; the service level counts calls answered
    within each queue's own ``service_level_s``.

    ``answer_within_s`` and ``shrinkage`` feed the reports' Erlang C staffing suggestion.
    """

    timezone: str = "Europe/Paris"
    service_level_min: float = Field(80.0, gt=0, lt=100)
    abandon_rate_max: float = Field(5.0, ge=0, le=100)
    longest_wait_max_s: int = Field(120, ge=1)
    asa_max_s: int = Field(30, ge=1)
    occupancy_max: float = Field(90.0, gt=0, le=100)
    waiting_max: int = Field(5, ge=1)
    answer_within_s: int = Field(20, ge=1, le=3600)
    shrinkage: float = Field(0.0, ge=0, lt=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name like Europe/Paris)") from None
        return value


class Settings(_Section):
    ami: AmiSettings = AmiSettings()
    agi: AgiSettings = AgiSettings()
    http: HttpSettings = HttpSettings()
    process: ProcessSettings = ProcessSettings()
    database: DatabaseSettings = DatabaseSettings()
    state: StateSettings = StateSettings()
    paths: PathSettings = PathSettings()
    security: SecuritySettings = SecuritySettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    tickets: TicketSettings = TicketSettings()
    voicemail: VoicemailSettings = VoicemailSettings()
    transcription: TranscriptionSettings = TranscriptionSettings()
    smtp: SmtpSettings = SmtpSettings()
    ivr: IvrSettings = IvrSettings()
    acd: AcdSettings = AcdSettings()
    agents: AgentsSettings = AgentsSettings()
    supervision: SupervisionSettings = SupervisionSettings()


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from defaults, the TOML file (``path`` or ``$CTI_CONFIG``) and the environment."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    file_path = path or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    if file_path is not None:
        raw = _read_toml(file_path)
    _merge(raw, _from_environment(env))
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, file_path)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """``CTI_AMI__PORT=5039`` becomes ``{"ami": {"port": "5039"}}``; JSON-ish values stay strings for pydantic."""
    found: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or ENV_SEPARATOR not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition(ENV_SEPARATOR)
        found.setdefault(section, {})[key] = _parse_env_value(value)
    return found


def _parse_env_value(value: str) -> Any:
    """Tables (``{...}``) are read as inline TOML so token maps can come from the environment."""
    stripped = value.strip()
    if stripped.startswith("{"):
        try:
            return tomllib.loads(f"v = {stripped}")["v"]
        except tomllib.TOMLDecodeError:
            return value
    return value


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _describe(exc: ValidationError, file_path: Path | None) -> str:
    origin = f" (file {file_path} or CTI_* environment)" if file_path else " (CTI_* environment)"
    lines = [f"invalid configuration{origin}:"]
    for error in exc.errors():
        key = ".".join(_masked(error["loc"]))
        env_name = ENV_PREFIX + ENV_SEPARATOR.join(str(p).upper() for p in error["loc"][:2])
        lines.append(f"  {key}: {error['msg']} [env {env_name}]")
    return "\n".join(lines)


def _masked(loc: tuple[int | str, ...]) -> list[str]:
    """An API token is a key of its table: an error about it names only its first characters, since the
    message goes to a terminal or a log."""
    parts = [str(part) for part in loc]
    if parts[:2] == ["security", "api_tokens"] and len(parts) > 2:
        parts[2] = parts[2][:4] + "..."
    return parts
