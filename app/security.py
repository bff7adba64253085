"""API keys with scopes: ``assign``, ``read``, ``admin``.

A key looks like ``sk_<id>_<secret>``. Only its SHA-256 is stored, as a line
``<id>:<sha256-hex>:<scope>[+<scope>...][:<label>]`` in ``SEGMENTS_API_KEYS`` (comma-separated)
or in the file ``SEGMENTS_API_KEYS_FILE`` (one per line, ``#`` comments). Keys are random with
256 bits of entropy, so a fast hash is enough; the digest is compared with
``hmac.compare_digest``. A scope grants only its own endpoints: an ``assign`` key cannot read
segments. The keys file is re-read when it changes, so a revoked key stops working without a
restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends
from starlette.datastructures import State
from starlette.requests import Request

from app.limits import pending_body_problem
from app.observability import API_KEYS_FILE_OK
from app.problems import Problem
from app.query import single_body_names, single_query_params

log = logging.getLogger(__name__)
Scope = Literal["assign", "read", "admin"]
SCOPES: tuple[Scope, ...] = ("assign", "read", "admin")
SCOPE_KEY = "x-required-scope"  # each operation's scope, in the OpenAPI document


@dataclass(frozen=True)
class KeyEntry:
    key_id: str
    digest: bytes
    scopes: frozenset[str]
    label: str = ""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(scopes: list[str], label: str = "") -> tuple[str, str]:
    """A new key and the line that configures it (the key itself is shown once)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"unknown scope(s) {', '.join(unknown) or '(none)'}; use {SCOPES}")
    held = sorted({c for c in label if c in ",#" or not c.isprintable()})
    if held:
        raise ValueError(
            f"the label holds {', '.join(map(repr, held))}, which a keys line cannot hold (a "
            "comma separates entries, # starts a comment, a line ends at a break): choose a "
            "label without them"
        )
    key_id = secrets.token_hex(4)
    key = f"sk_{key_id}_{secrets.token_urlsafe(32)}"
    line = f"{key_id}:{hash_key(key)}:{'+'.join(sorted(set(scopes)))}"
    return key, f"{line}:{label}" if label else line


def parse_entries(text: str, source: str) -> dict[str, KeyEntry]:
    """Every entry of ``text``; raises ``ValueError`` on the first malformed one."""
    entries, problems = parse_lines(text, source)
    if problems:
        raise ValueError(problems[0])
    return entries


def parse_lines(text: str, source: str) -> tuple[dict[str, KeyEntry], list[str]]:
    """The valid entries of ``text`` and a sentence for each malformed line (by its number).

    A line may hold several comma-separated entries (as ``SEGMENTS_API_KEYS`` does).
    """
    entries: dict[str, KeyEntry] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        for item in raw.split("#", 1)[0].split(","):
            try:
                entry = _parse_entry(item.strip())
            except ValueError as exc:
                problems.append(f"{source} line {number}: {exc}")
                continue
            if entry is not None:
                entries[entry.key_id] = entry
    return entries, problems


def _parse_entry(line: str) -> KeyEntry | None:
    if not line:
        return None
    parts = line.split(":")
    if len(parts) < 3 or len(parts[1]) != 64:
        raise ValueError("expected <id>:<sha256-hex>:<scopes>")
    scopes = frozenset(parts[2].split("+"))
    if not scopes <= set(SCOPES):
        raise ValueError(f"unknown scope in {parts[2]!r}")
    try:
        digest = bytes.fromhex(parts[1])
    except ValueError:
        raise ValueError("the hash is not hex") from None
    return KeyEntry(parts[0], digest, scopes, ":".join(parts[3:]))


class KeyRing:
    """The configured keys; re-reads the keys file when it changes.

    At start every entry must be valid (bad config fails at start). Afterwards the keys file
    fails closed: its keys are the valid lines of what it holds now; a malformed line is left
    out (never kept from before), and a missing or unreadable file contributes no key (the
    inline ``SEGMENTS_API_KEYS`` stay). Each distinct problem is logged once, ``problems``
    lists them for ``/readyz`` (without server paths) and ``segments_api_keys_file_ok`` is 0
    while there is one.
    """

    def __init__(self, inline: str | None, path: Path | None, enabled: bool = True) -> None:
        self.enabled, self.path = enabled, path
        self.inline = parse_entries(inline or "", "SEGMENTS_API_KEYS")
        self._token: tuple[int, ...] | None = None
        self.problems: tuple[str, ...] = ()
        self.entries: dict[str, KeyEntry] = dict(self.inline)
        if path is not None:
            if not path.exists():
                raise ValueError(f"API keys file {path} does not exist")
            self.entries |= parse_entries(read_keys(path), str(path))
            self._token = _file_token(path)
        API_KEYS_FILE_OK.set(1)
        log.info("loaded %d API key(s)", len(self.entries))

    def reload(self) -> None:
        """Re-read the keys file if it changed (or the last read had a problem)."""
        if self.path is None:
            return
        try:
            token = _file_token(self.path)
            if token == self._token and not self.problems:
                return
            text = read_keys(self.path)
        except FileNotFoundError:
            self._apply({}, ["the keys file does not exist: no key from it is accepted"], None)
            return
        except (OSError, UnicodeDecodeError) as exc:
            problem = f"the keys file cannot be read ({type(exc).__name__}): no key from it is"
            self._apply({}, [problem + " accepted"], None)
            return
        entries, problems = parse_lines(text, "keys file")
        self._apply(entries, [f"{p}: refused" for p in problems], token)

    def _apply(
        self, from_file: dict[str, KeyEntry], problems: list[str], token: tuple[int, ...] | None
    ) -> None:
        self.entries = self.inline | from_file
        if token != self._token:
            log.info("loaded %d API key(s)", len(self.entries))
        self._token = token
        for problem in problems:
            if problem not in self.problems:  # once per distinct problem, not every check
                log.error("API keys file %s: %s", self.path, problem)
        if self.problems and not problems:
            log.warning("API keys file %s is valid again", self.path)
        self.problems = tuple(problems)
        API_KEYS_FILE_OK.set(0 if problems else 1)

    def check(self, presented: str | None, scope: Scope) -> KeyEntry | None:
        """The key's entry if it may use ``scope``; raises 401/403 problems otherwise."""
        if not self.enabled:
            return None
        if not presented:
            raise Problem(
                401,
                "Unauthorized",
                "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'",
                type_="/problems/unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if presented == CONFLICTING:
            raise Problem(
                401,
                "Unauthorized",
                "the request sent two different API keys (in 'Authorization' and 'X-API-Key', "
                "or one header twice): send one",
                type_="/problems/unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
        entry = self._match(presented)
        if entry is None:
            raise Problem(
                401,
                "Unauthorized",
                "the API key is not valid (unknown or revoked)",
                type_="/problems/unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope not in entry.scopes:
            raise Problem(
                403,
                "Forbidden",
                f"this key lacks the '{scope}' scope this endpoint needs",
                type_="/problems/forbidden",
            )
        return entry

    def _match(self, presented: str) -> KeyEntry | None:
        parts = presented.split("_", 2)
        entry = self.entries.get(parts[1]) if len(parts) == 3 and parts[0] == "sk" else None
        digest = hashlib.sha256(presented.encode()).digest()
        # compare against a real digest even for an unknown id, so timing says nothing
        expected = entry.digest if entry else b"\x00" * 32
        return entry if hmac.compare_digest(digest, expected) and entry else None


def read_keys(path: Path) -> str:
    """A keys file's text; a byte order mark (Windows editors save UTF-8 with one) is no part
    of the first key's id, where it made that key refused while listed as any other."""
    return path.read_text(encoding="utf-8-sig")


def _file_token(path: Path) -> tuple[int, ...]:
    """What changes when the file is replaced, rewritten or has its permissions changed."""
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def presented_key(request: Request) -> str | None:
    """The key sent as ``Authorization: Bearer <key>``, else as ``X-API-Key``."""
    return presented_key_raw(request.scope["headers"])


# What ``presented_key_raw`` gives for a request that sent two different keys (a value no key
# can have: keys hold no blanks). ``KeyRing.check`` refuses it by name.
CONFLICTING = "two different keys"
AUTHORIZED = "segments.authorized"  # the scope's mark of a request whose key was checked


def presented_key_raw(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """``presented_key`` from an ASGI scope's raw headers (lower-case names, as ASGI sends).

    Every key a request sends must be the same one: a valid key beside another (a revoked key
    in ``X-API-Key`` behind a valid bearer, or a second ``Authorization`` header) is
    ``CONFLICTING``, never whichever header happened to be read first.
    """
    found: set[bytes] = set()
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.strip().partition(b" ")
            if b"\t" in scheme:  # (a tab separates as a space does)
                scheme, _, rest = scheme.partition(b"\t")
                credentials = rest + b" " + credentials
            if scheme.lower() == b"bearer":  # another scheme carries no API key
                found.add(credentials.strip())  # surrounding blanks are no part of a key
        elif name == b"x-api-key":
            found.add(value.strip())
    found.discard(b"")
    if len(found) > 1:
        return CONFLICTING
    return found.pop().decode("latin-1") if found else None


async def authorize(state: State, presented: str | None, scope: Scope) -> None:
    """Let a request through only with a key holding ``scope`` (and within its rate limit)."""
    entry = state.keys.check(presented, scope)
    limiter = state.rate_limiter  # set by the lifespan when a limit is configured
    if entry is not None and limiter is not None:
        await limiter.check(entry.key_id)


def require(scope: Scope) -> Callable[[Request], Awaitable[None]]:
    """A dependency that lets a request through only with a key holding ``scope``.

    ``async`` on purpose: FastAPI runs a sync dependency in its thread pool, a hop that costs
    more than the check itself on the assignment hot path.
    """

    async def check(request: Request) -> None:
        await authorize(request.app.state, presented_key(request), scope)
        request.scope[AUTHORIZED] = True  # (a later validation error checks it not again)
        pending_body_problem(request.scope)  # a body of the wrong type or size, now the key
        # is known good (a route that reads no body would never raise it: app/limits.py)

    check.__name__ = f"require_{scope}"
    return check


def scoped(scope: Scope) -> dict[str, Any]:
    """A route's keyword arguments that require ``scope`` and publish it in the contract
    (``x-required-scope``), so the two cannot disagree: ``@router.get(..., **scoped("read"))``.
    """
    return {
        "dependencies": [
            Depends(require(scope)),
            Depends(single_query_params),
            Depends(single_body_names),
        ],
        "openapi_extra": {SCOPE_KEY: scope},
    }
