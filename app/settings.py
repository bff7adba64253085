"""One typed settings object, read from ``SEGMENTS_*`` environment variables (and ``.env``).

Bad values fail at start with a message naming the variable. Every setting is listed in the
README's configuration table.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.assignment.customer_ids import MAX_ID_LENGTH
from app.errors import ConfigError
from app.history import HistoryConfig
from app.problems import MAX_BATCH_CEILING
from app.security import parse_lines
from app.webhooks.config import WebhookConfig
from app.words import echoed

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"  # a model name (app.registry.store)
MAX_SHARDS = 256  # a members cursor holds a position per shard, and fits in a URL


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENTS_", env_file=".env", extra="ignore")

    model_store: Path = Field(Path("models"), description="folder of the model store")
    model_name: str = Field(
        "customers", description="the default model (requests without `?model=`)"
    )
    models: str = Field(
        "",
        pattern=rf"^\s*({_NAME}\s*(,\s*{_NAME}\s*)*)?$",
        description="comma-separated models to serve besides the default (empty: every "
        "model in the store with a promoted version)",
    )
    reload_interval: float = Field(
        1.0, gt=0, le=60, description="seconds between checks for a newly promoted version"
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="largest request body accepted"
    )
    max_batch: int = Field(
        10_000, ge=1, le=MAX_BATCH_CEILING, description="most customers per batch"
    )
    max_id_length: int = Field(
        MAX_ID_LENGTH, ge=1, le=1024, description="longest customer id accepted"
    )
    api_keys: str | None = Field(
        None, description="hashed key entries '<id>:<sha256>:<scopes>', comma-separated"
    )
    api_keys_file: Path | None = Field(None, description="file of hashed key entries, one a line")
    dev_mode: bool = Field(False, description="turn authentication off (local development only)")
    rate_limit_per_minute: int | None = Field(
        None, ge=1, description="requests per minute per API key, shared by workers via Redis"
    )
    metrics_require_key: bool = Field(False, description="require a 'read' key for /metrics")
    readyz_requires_redis: bool = Field(
        False,
        description="/readyz answers 503 while Redis is unreachable (default: 200 'degraded': "
        "assignments are still answered and their records spooled)",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="open connections per worker process; beyond it uvicorn answers 503 "
        "(segments serve)",
    )
    keep_alive_timeout: int = Field(
        5, ge=1, le=600, description="seconds an idle kept-alive connection stays open"
    )
    worker_healthcheck_timeout: int = Field(
        60,
        ge=1,
        le=3_600,
        description="seconds a worker process may take to answer the supervisor's health check "
        "(`--workers` > 1) before it is killed and restarted; uvicorn's 5 s killed workers still "
        "importing on a loaded machine, over and over, so that serve never started",
    )
    request_timeout: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="seconds a request has to arrive whole (headers and body) before its "
        "connection is closed (segments serve)",
    )
    access_log: bool = Field(True, description="one JSON log line per request")
    opentelemetry: bool = Field(
        False,
        description="FastAPI's built-in OpenTelemetry spans, metrics and logs (needs an "
        "OpenTelemetry SDK set up in the process; Prometheus /metrics is always on)",
    )
    # -- Redis: assignments, migration history, membership, flows, events -------------------
    redis_url: str | None = Field(
        None,
        validation_alias=AliasChoices("SEGMENTS_REDIS_URL", "REDIS_URL", "redis_url"),
        description="Redis server; unset: an embedded one under data_dir",
    )
    record_assignments: bool = Field(True, description="record assignments in Redis")
    data_dir: Path = Field(Path(".segments"), description="embedded Redis data and the spool")
    key_prefix: str = Field("seg:", pattern=r"^[A-Za-z0-9:_.-]{1,32}$")
    redis_shards: int = Field(1, ge=1, le=MAX_SHARDS, description="hash-tag shards (Redis Cluster)")
    redis_timeout_ms: int = Field(100, ge=1, le=60_000, description="one recording call")
    redis_read_timeout_ms: int = Field(
        250, ge=1, le=60_000, description="a profile read (assignment by id)"
    )
    history_cap: int = Field(100, ge=1, description="migrations kept per customer")
    history_ttl_days: float = Field(
        365.0, gt=0, description="history entries older than this are not returned"
    )
    stream_maxlen: int = Field(100_000, ge=1, description="segment-change events kept")
    flow_bucket_seconds: int = Field(
        3600, ge=60, le=86400, description="flow counter time bucket (one minute to one day)"
    )
    flow_ttl_days: float = Field(90.0, gt=0, description="flow counters retention")
    spool_max_records: int = Field(1_000_000, ge=1, description="outage spool bound")
    profile_cache_size: int = Field(
        20_000,
        ge=0,
        description="customers whose stored profile a worker keeps for assignment by id "
        "(checked by Redis at record time; 0: off)",
    )
    # -- drift (docs/drift.md) ---------------------------------------------------------------
    drift_counting: bool = Field(
        True, description="count live assignments into the serving version's drift bins"
    )
    drift_flush_seconds: float = Field(
        5.0, gt=0, le=300, description="seconds between flushes of a worker's drift counts"
    )
    drift_ttl_days: float = Field(30.0, gt=0, description="live drift counters retention")
    drift_window_hours: float = Field(
        24.0, gt=0, le=24 * 366, description="default window of /v1/drift and segment status"
    )
    drift_watch: float = Field(0.1, gt=0, description="PSI from which a status is 'watch'")
    drift_threshold: float = Field(0.25, gt=0, description="PSI from which a status is 'drift'")
    drift_min_observations: int = Field(
        100, ge=1, description="fewer observations than this: status 'no_data'"
    )

    # -- Webhooks (docs/webhooks.md) ------------------------------------------------------
    webhook_dispatcher: bool = Field(
        True, description="run the webhook dispatcher in `segments serve` (one per deployment)"
    )
    webhook_batch_size: int = Field(500, ge=1, le=10_000, description="most events per POST")
    webhook_batch_wait_ms: int = Field(
        200, ge=0, le=60_000, description="longest wait for a batch to fill"
    )
    webhook_timeout_s: float = Field(10.0, gt=0, le=300, description="deadline of one POST")
    webhook_retry_base_ms: int = Field(1_000, ge=1, description="first retry's backoff")
    webhook_retry_max_ms: int = Field(600_000, ge=1, description="longest backoff")
    webhook_retry_for_s: float = Field(
        86_400.0, gt=0, description="a batch failing this long goes to the dead letters"
    )
    webhook_disable_after_s: float = Field(
        86_400.0, gt=0, description="an endpoint failing this long is disabled"
    )
    webhook_max_queue: int = Field(1_000_000, ge=1, description="events waiting per endpoint")
    webhook_log_size: int = Field(100, ge=1, le=10_000, description="attempts logged per endpoint")
    webhook_allow_private: bool = Field(
        False, description="allow targets on private, loopback and link-local addresses"
    )
    webhook_allow_http_hosts: str = Field(
        "", description="hosts that may be reached over plain http, comma-separated"
    )
    webhook_lease_ms: int = Field(
        10_000, ge=300, le=600_000, description="dispatcher lease (failover time)"
    )

    def webhook_config(self) -> WebhookConfig:
        hosts = {h.strip().lower() for h in self.webhook_allow_http_hosts.split(",")}
        return WebhookConfig(
            batch_size=self.webhook_batch_size,
            batch_wait_ms=self.webhook_batch_wait_ms,
            timeout_s=self.webhook_timeout_s,
            retry_base_ms=self.webhook_retry_base_ms,
            retry_max_ms=self.webhook_retry_max_ms,
            retry_for_s=self.webhook_retry_for_s,
            disable_after_s=self.webhook_disable_after_s,
            max_queue=self.webhook_max_queue,
            log_size=self.webhook_log_size,
            allow_private=self.webhook_allow_private,
            allow_http_hosts=frozenset(hosts - {""}),
            lease_ms=self.webhook_lease_ms,
        )

    def history_config(self, model: str | None = None) -> HistoryConfig:
        """Where and how the service records ``model`` (default: ``model_name``): a model
        other than the default records under its own key prefix and spool."""
        config = HistoryConfig(
            redis_url=self.redis_url,
            key_prefix=self.key_prefix,
            shards=self.redis_shards,
            history_cap=self.history_cap,
            history_ttl_days=self.history_ttl_days,
            stream_maxlen=self.stream_maxlen,
            flow_bucket_seconds=self.flow_bucket_seconds,
            flow_ttl_days=self.flow_ttl_days,
            timeout_ms=self.redis_timeout_ms,
            read_timeout_ms=self.redis_read_timeout_ms,
            spool_dir=self.data_dir / "spool",
            spool_max_records=self.spool_max_records,
            data_dir=self.data_dir / "redis",
            profile_cache_size=self.profile_cache_size,
            model=model or self.model_name,
        )
        return config if model in (None, self.model_name) else config.of_model(model)

    log_level: str = Field("info", pattern="^(debug|info|warning|error)$")

    def served_models(self) -> tuple[str, ...]:
        """``models`` as names (empty: every model with a promoted version)."""
        return tuple(n.strip() for n in self.models.split(",") if n.strip())

    @field_validator("api_keys_file", mode="before")
    @classmethod
    def _blank_file_is_none(cls, value: object) -> object:
        """An empty ``SEGMENTS_API_KEYS_FILE`` (a compose file's ``${VAR:-}``) is no file, as
        an empty ``SEGMENTS_API_KEYS`` is no keys: it was the path '.', a keys file configured."""
        return None if isinstance(value, str) and not value.strip() else value

    def check_serving(self) -> None:
        """The service never runs without keys unless development mode says so, nor in
        development mode beside configured keys (authentication off where keys say it is
        wanted); a ``SEGMENTS_API_KEYS`` holding no entry (``" "``, ``","``, a comment) is no
        keys: it started a service that refused every request."""
        inline, problems = parse_lines(self.api_keys or "", "SEGMENTS_API_KEYS")
        if self.dev_mode:
            # keys configured say authentication is wanted: development mode beside them
            # answered every request without a key, its only sign a line in the log
            if inline or problems or self.api_keys_file is not None:
                raise ValueError(
                    "SEGMENTS_DEV_MODE=true turns authentication off, but API keys are "
                    "configured (SEGMENTS_API_KEYS or SEGMENTS_API_KEYS_FILE): the service "
                    "would answer every request without a key. Unset SEGMENTS_DEV_MODE to "
                    "require the keys, or unset the keys for a development run"
                )
            return
        if self.api_keys_file is not None:
            return
        if inline or problems:  # a malformed entry is refused by name when the keys are read
            return
        held = "" if self.api_keys is None else f"SEGMENTS_API_KEYS={echoed(self.api_keys)} "
        raise ValueError(
            f"no API keys configured: {held + 'holds no key entry; ' if held else ''}set "
            "SEGMENTS_API_KEYS or SEGMENTS_API_KEYS_FILE "
            "(create one with `segments keys create`), or SEGMENTS_DEV_MODE=true to run "
            "without authentication on a development machine"
        )


def get_settings() -> Settings:
    """The settings as the environment gives them now (not cached: a command, or a test,
    that changes the environment gets what it set); ``ConfigError`` naming each variable
    that is wrong, with what it holds and what it must be (not pydantic's traceback)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {settings_problems(exc)}") from None


def settings_problems(exc: ValidationError) -> str:
    """``SEGMENTS_KEY_PREFIX='a b': must match ...; ...``: each wrong variable, briefly."""
    found = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        field = Settings.model_fields.get(name)
        alias = field.validation_alias if field is not None else None
        names = alias.choices if isinstance(alias, AliasChoices) else [f"SEGMENTS_{name}".upper()]
        given = repr(error["input"])[:80] if name else ""
        where = f"{names[0]}={given}" if name else "settings"
        found.append(f"{where}: {error['msg']}")
    return "; ".join(found)
