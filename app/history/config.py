"""The history feature's configuration: one frozen value, mapped from ``Settings`` by the app.

Every size, cap, retention and timeout the Redis layer, the spool and the embedded server use
comes from here, so tests can shrink them and operators can see them in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """Settings of assignment recording, the outage spool and the embedded Redis server.

    Parameters
    ----------
    redis_url
        ``redis://``, ``rediss://`` or ``unix://`` URL of the Redis server; ``None`` starts an
        embedded server under ``data_dir``.
    key_prefix
        Prefix of every key (``seg:``); must not contain ``{`` or ``}`` (hash tags).
    shards
        Number of hash-tag shards (see ``docs/redis-keys.md``). 1 for a single node; on Redis
        Cluster a few per primary (e.g. 64). Fixed for the life of the data: changing it
        re-keys everything.
    history_cap
        Most migrations kept per customer.
    history_ttl_days
        History entries older than this are no longer returned (trimmed as the cap moves).
    stream_maxlen
        Approximate cap of each event stream (``XADD MAXLEN ~``).
    flow_bucket_seconds
        Width of a flow-counter time bucket.
    flow_ttl_days
        A flow bucket expires this long after it ends.
    timeout_ms
        Deadline of one recording call and the socket connect timeout.
    batch_timeout_ms
        Deadline of a batch pipeline or a read query (also the socket read timeout).
    read_timeout_ms
        Deadline of a profile read of an assignment by id when it is not answered with the
        records of its lane (their pipeline failed, or this process is spooling): a read
        never waits on, nor fails with, the recording's deadline alone.
    spool_dir
        Folder of the outage spool (one SQLite file shared by the worker processes).
    spool_max_records
        Most records the spool holds; beyond it new records are dropped and counted.
    spool_fsync
        Sync the spool to disk on every append (survives power loss; costs a disk flush per
        spooled request). Off, a spooled record survives a crash of the process, not of
        the machine — the same promise as Redis's default ``appendfsync everysec``.
    replay_interval_ms
        How often the replayer checks Redis and the spool.
    replay_batch
        Records per replay pipeline.
    data_dir
        Folder of the embedded Redis server's data (AOF and RDB), its socket and its log.
    profile_cache_size
        Most customers whose stored profile a process keeps for assignment by id (0: none;
        ``app/history/profile_cache.py``): a cached profile makes a by-id assignment one
        round trip, checked by Redis when it is recorded.
    model
        The model recorded (the ``model`` label of the migrations a replay counts).
    """

    redis_url: str | None = None
    key_prefix: str = "seg:"
    shards: int = 1
    history_cap: int = 100
    history_ttl_days: float = 365.0
    stream_maxlen: int = 100_000
    flow_bucket_seconds: int = 3600
    flow_ttl_days: float = 90.0
    forget_ttl_days: float = 30.0
    timeout_ms: int = 100
    batch_timeout_ms: int = 2_000
    read_timeout_ms: int = 250
    spool_dir: Path = Path(".segments/spool")
    spool_max_records: int = 1_000_000
    spool_fsync: bool = False
    replay_interval_ms: int = 500
    replay_batch: int = 500
    data_dir: Path = Path(".segments/redis")
    profile_cache_size: int = 20_000
    model: str = ""

    def __post_init__(self) -> None:
        if not self.key_prefix or "{" in self.key_prefix or "}" in self.key_prefix:
            raise ValueError("key_prefix must be non-empty and contain no '{' or '}'")
        positive = {
            "shards": self.shards,
            "history_cap": self.history_cap,
            "history_ttl_days": self.history_ttl_days,
            "stream_maxlen": self.stream_maxlen,
            "flow_bucket_seconds": self.flow_bucket_seconds,
            "flow_ttl_days": self.flow_ttl_days,
            "timeout_ms": self.timeout_ms,
            "batch_timeout_ms": self.batch_timeout_ms,
            "read_timeout_ms": self.read_timeout_ms,
            "spool_max_records": self.spool_max_records,
            "replay_interval_ms": self.replay_interval_ms,
            "replay_batch": self.replay_batch,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if self.profile_cache_size < 0:
            raise ValueError(f"profile_cache_size must be 0 or more, got {self.profile_cache_size}")

    @property
    def history_ttl_ms(self) -> int:
        return max(1, round(self.history_ttl_days * DAY_MS))

    @property
    def forget_ttl_ms(self) -> int:
        """How long a forgotten customer's records made before the forget stay ignored."""
        return max(1, round(self.forget_ttl_days * DAY_MS))

    @property
    def flow_ttl_ms(self) -> int:
        return max(1, round(self.flow_ttl_days * DAY_MS))

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000

    @property
    def batch_timeout_s(self) -> float:
        return self.batch_timeout_ms / 1000

    @property
    def read_timeout_s(self) -> float:
        return self.read_timeout_ms / 1000

    def of_model(self, name: str) -> HistoryConfig:
        """The recording configuration of a model other than the service's default one
        (``SEGMENTS_MODEL_NAME``): its keys and spool apart (docs/redis-keys.md)."""
        return replace(
            self, key_prefix=f"{self.key_prefix}m:{name}:", spool_dir=self.spool_dir / f"m-{name}"
        )
