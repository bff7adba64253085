"""Which Redis a recording run writes to: the service's, found the way the service finds it.

A configured URL (``SEGMENTS_REDIS_URL`` / ``REDIS_URL``) wins. Without one, the service runs
an embedded server under the data folder: while it runs, the run connects to its socket;
otherwise the run starts that same server itself (persisted under the data folder, so a
later ``segments serve`` sees what the run recorded) and stops it at the end.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from app.history import EmbeddedRedis
from app.history.embedded import PID_FILE, SOCKET


@dataclass(frozen=True)
class Target:
    url: str
    description: str  # for the user: the URL without its password, or the socket


def redact(url: str) -> str:
    """``url`` without its password."""
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
    server's command line, found through the pid file.
    """
    candidates = [data_dir / SOCKET]
    with contextlib.suppress(OSError, ValueError):
        pid = int((data_dir / PID_FILE).read_text().strip())
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        if "--unixsocket" in args:
            candidates.append(Path(args[args.index("--unixsocket") + 1]))
    return next((path for path in candidates if _answers(path)), None)


@contextlib.contextmanager
def redis_target(redis_url: str | None, data_dir: Path) -> Iterator[Target]:
    """The Redis to record into, started for the run if it must be (and stopped after)."""
    if redis_url is not None:
        yield Target(redis_url, redact(redis_url))
        return
    data_dir = data_dir.resolve()
    socket_path = running_embedded(data_dir)
    if socket_path is not None:
        yield Target(f"unix://{socket_path}", f"the service's embedded Redis at {socket_path}")
        return
    with EmbeddedRedis(data_dir) as server:
        described = os.fspath(server.socket_path)
        yield Target(server.url, f"embedded Redis at {described} (started for this run)")
