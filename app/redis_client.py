"""The app's one Redis resource: opened by the lifespan, handed to history and rate limits.

``open_redis(settings)`` yields one client (``decode_responses``, the configured deadlines, no
retries: the spool retries) for ``SEGMENTS_REDIS_URL``, or for an embedded server it starts
under the data directory when no URL is set, and closes both on exit; ``None`` when nothing
configured needs Redis. A feature never opens its own connection or borrows another
feature's: the lifespan hands it this client.

``redis_target(config)`` is how a command (``segments assign --record``, ``segments customers
forget``, ``segments history migrate-keys``) finds the same Redis: the configured URL, else
the embedded server of the running service (found by its socket under the data directory),
else that same server started for the command (persisted there, so the service sees what
the command wrote) and stopped after it. It says which, without a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.history import EmbeddedRedis, EmbeddedRedisError, HistoryConfig
from app.history.embedded import PID_FILE, SOCKET
from app.history.service import open_client
from app.settings import Settings

START_TIMEOUT_S = 2.0
_SOCKET_IN_TITLE = re.compile(r"(?:--unixsocket\x00|unixsocket:)([^\x00\s]+)")


class RateLimitWithoutRedis(RuntimeError):
    """A rate limit is configured, but no Redis can be had at start."""


def needs_redis(settings: Settings) -> bool:
    """Recording and rate limits keep their state in Redis; nothing else does."""
    return settings.record_assignments or settings.rate_limit_per_minute is not None


@contextlib.asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[Redis | None]:
    """The app's Redis client (and the embedded server when no URL is configured).

    A rate limit needs Redis to answer at start, so that a limit that cannot work is not
    silently off (afterwards it fails open while Redis is down). Recording alone starts
    without Redis: its records wait in the spool.

    Raises
    ------
    RateLimitWithoutRedis
        A rate limit is set and Redis does not answer, or cannot be started.
    EmbeddedRedisError
        Recording needs the embedded server and it cannot be started.
    """
    if not needs_redis(settings):
        yield None
        return
    config = settings.history_config()
    limited = settings.rate_limit_per_minute is not None
    async with contextlib.AsyncExitStack() as stack:
        try:
            client = await open_client(config, stack)
            if limited:
                async with asyncio.timeout(START_TIMEOUT_S):
                    await client.ping()
        except (EmbeddedRedisError, RedisError, OSError, TimeoutError) as exc:
            if not limited:
                raise
            raise RateLimitWithoutRedis(
                "SEGMENTS_RATE_LIMIT_PER_MINUTE is set but no Redis can be had "
                f"({str(exc) or type(exc).__name__}): set SEGMENTS_REDIS_URL to a Redis that "
                "answers, install redis-server for the embedded one, or unset the limit"
            ) from None
        yield client


@dataclass(frozen=True)
class RedisTarget:
    url: str
    description: str  # for the user, "Redis at <URL without its password>" or which socket


def redact(url: str) -> str:
    """``url`` without its password.

    >>> redact("redis://app:s3cret@cache:6379/0")
    'redis://app:***@cache:6379/0'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def _answers(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        with redis.Redis(unix_socket_path=str(socket_path), socket_timeout=2) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def running_embedded(data_dir: Path) -> Path | None:
    """The socket of the embedded server running for ``data_dir``, if one answers.

    The socket is in the data folder, or (for a long path) in a temporary folder named on the
    server's command line, found through the pid file. Redis 7 rewrites its process title to
    ``redis-server unixsocket:<path>``; older ones keep ``--unixsocket <path>``.
    """
    candidates = [data_dir / SOCKET]
    with contextlib.suppress(OSError, ValueError):
        pid = int((data_dir / PID_FILE).read_text().strip())
        title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        if found := _SOCKET_IN_TITLE.search(title):
            candidates.append(Path(found.group(1)))
    return next((path for path in candidates if _answers(path)), None)


# beside the embedded server's socket while `segments serve` runs on it: the service's key
# prefix, so that a command on that server under another prefix says the service sees none of
# it (a new user's `assign --record`, run from a shell without the service's
# SEGMENTS_KEY_PREFIX, recorded 20,000 customers the service never found, and `customers
# rescore` then moved "0 customers")
SERVICE_PREFIX_FILE = "service-key-prefix"


# and its default model (SEGMENTS_MODEL_NAME): a command recording another model on that
# server, run with the same default, records where the service reads it, and is not told of a
# service with another default (it was, on every `assign --record --model NAME` of the
# README's own several-models flow)
SERVICE_MODEL_FILE = "service-model-name"


@contextlib.contextmanager
def service_prefix(data_dir: Path, prefix: str, model_name: str | None = None) -> Iterator[None]:
    """Mark ``data_dir``'s embedded server as the service's, its keys under ``prefix`` (and
    its default model ``model_name``)."""
    marker = data_dir.resolve() / SERVICE_PREFIX_FILE
    model = data_dir.resolve() / SERVICE_MODEL_FILE
    marker.write_text(prefix, encoding="utf-8")
    if model_name is not None:
        model.write_text(model_name, encoding="utf-8")
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)
        model.unlink(missing_ok=True)


def _same_service(settings: Settings) -> bool:
    """Whether the service running on the embedded server this command would use has the
    command's key prefix and default model."""
    if settings.redis_url is not None:
        return False
    data_dir = settings.history_config().data_dir.resolve()  # the embedded server's
    try:
        prefix = (data_dir / SERVICE_PREFIX_FILE).read_text(encoding="utf-8")
        model = (data_dir / SERVICE_MODEL_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    same = prefix == settings.key_prefix and model == settings.model_name
    return same and running_embedded(data_dir) is not None


def _prefix_note(data_dir: Path, prefix: str) -> str:
    """What a command under ``prefix`` on the running service's server must be told."""
    try:
        service = (data_dir / SERVICE_PREFIX_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
    if prefix == service or re.fullmatch(re.escape(service) + r"m:[^{}]+:", prefix):
        return ""  # the service's own keys, or another model's under them
    return (
        f"; the service running on it keeps its keys under {service!r} (its "
        f"SEGMENTS_KEY_PREFIX): it sees nothing under {prefix!r}, so run this command with "
        f"SEGMENTS_KEY_PREFIX={service}"
    )


def namespace_note(settings: Settings, model_name: str) -> str | None:
    """For a command that records ``model_name``: where a model other than the default one
    records, and the trap in it (the default model, ``SEGMENTS_MODEL_NAME``, records under
    the bare prefix: a service started with another ``SEGMENTS_MODEL_NAME`` than the
    command's looks for the model elsewhere). None for the default model."""
    if model_name == settings.model_name or _same_service(settings):
        return None
    own = settings.history_config(model_name).key_prefix
    return (
        f"note: model {model_name!r} records under {own!r} because SEGMENTS_MODEL_NAME is "
        f"{settings.model_name!r}; a service started with SEGMENTS_MODEL_NAME={model_name} "
        f"would look for it under {settings.key_prefix!r} instead: give the service and "
        "this command the same SEGMENTS_MODEL_NAME"
    )


@contextlib.contextmanager
def redis_target(config: HistoryConfig) -> Iterator[RedisTarget]:
    """The Redis a command works on, started for it if it must be (and stopped after).

    Raises
    ------
    EmbeddedRedisError
        No URL is set, no embedded server answers, and one cannot be started (no binary,
        or another process owns the data directory's server but it does not answer).
    """
    keys = f", keys under {config.key_prefix!r}"  # another prefix than the service's: unseen
    if config.redis_url is not None:
        yield RedisTarget(config.redis_url, f"Redis at {redact(config.redis_url)}{keys}")
        return
    data_dir = config.data_dir.resolve()
    socket_path = running_embedded(data_dir)
    if socket_path is not None:
        yield RedisTarget(
            f"unix://{socket_path}",
            f"the running service's embedded Redis at {socket_path}{keys}"
            f"{_prefix_note(data_dir, config.key_prefix)}",
        )
        return
    with EmbeddedRedis(data_dir) as server:
        yield RedisTarget(
            server.url,
            f"an embedded Redis at {server.socket_path} (started for this command){keys}",
        )
