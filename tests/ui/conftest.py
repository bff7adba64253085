"""The dashboard under test: the real app in a real uvicorn server, on a copy of two trained
versions (k=3 promoted, k=6 not), recording into the suite's Redis under a prefix of its own,
with API keys of each scope. Browser tests drive Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.registry.store import ModelStore
from app.security import new_key
from app.settings import Settings
from tests.conftest import ROOT
from tests.serving.test_hot_swap import serving
from tests.versions import Versions

ARTIFACTS = ROOT / ".artifacts" / "ui"
KEYS = {"read": ["read"], "admin": ["read", "admin"], "admin_only": ["admin"], "assign": ["assign"]}


@dataclass
class Service:
    url: str
    store: ModelStore
    keys: dict[str, str]  # role -> key
    versions: Versions
    keys_file: Path

    def api(self, role: str = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)


def _settings(store: ModelStore, keys_file: Path, url: str, tmp: Path, **more: Any) -> Settings:
    return Settings(
        model_store=store.root,
        model_name="customers",
        reload_interval=0.1,
        api_keys_file=keys_file,
        access_log=False,
        redis_url=url,
        key_prefix=f"ui-{uuid.uuid4().hex[:8]}:",
        data_dir=tmp / "data",
        **more,
    )


@pytest.fixture
def service(versions: Versions, service_redis: str, tmp_path: Path) -> Iterator[Service]:
    store = ModelStore(tmp_path / "store")
    shutil.copytree(versions.store.root, store.root)
    made = {role: new_key(scopes, label=role) for role, scopes in KEYS.items()}
    keys_file = tmp_path / "keys"
    keys_file.write_text("".join(line + "\n" for _, line in made.values()))
    settings = _settings(store, keys_file, service_redis, tmp_path)
    with serving(settings) as url:
        yield Service(url, store, {r: k for r, (k, _) in made.items()}, versions, keys_file)
    with redis.Redis.from_url(service_redis) as client:
        keys = list(client.scan_iter(match=f"{settings.key_prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def chromium_path() -> str | None:
    """Debian's chromium, or the one SEGMENTS_CHROMIUM names."""
    configured = os.environ.get("SEGMENTS_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("chromium") or next(
        (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).is_file()), None
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module: Playwright's sync API keeps an event loop running in this
    thread while it lives, so it must stop before later tests call ``asyncio.run``."""
    path = chromium_path()
    if path is None:
        configured = os.environ.get("SEGMENTS_CHROMIUM")
        where = f"SEGMENTS_CHROMIUM={configured} is not a file" if configured else "not found"
        pytest.skip(
            f"no Chromium ({where}): `apt-get install -y chromium` (or set SEGMENTS_CHROMIUM "
            "to a Chromium executable) to run the browser tests"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    sync_playwright = sync_api.sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
