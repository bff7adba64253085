"""The keys file fails closed, and ``/readyz`` without a key names no server path.

A real app (TestClient, its lifespan and watchers running) on a real trained model: the keys
file is rewritten with a malformed line, deleted, made unreadable and repaired while it
serves, and what each key gets, ``/readyz``, ``/metrics`` and the log are checked.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.registry.store import ModelStore
from app.security import new_key
from app.settings import Settings
from app.training.job import TrainResult

WATCH_INTERVAL = 0.05


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll until ``condition`` holds (the watcher runs in the background); fail after
    ``timeout`` (a generous bound, not a measured figure)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(WATCH_INTERVAL)


def keys_file_ok(client: TestClient) -> float:
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "segments_api_keys_file_ok":
            return float(family.samples[0].value)
    raise AssertionError("segments_api_keys_file_ok is not exported")


def replace(path: Path, text: str) -> None:
    """Replace the file as an operator should (a new file renamed over it): written in place,
    the watcher can read it truncated, a state that refuses its keys until the next check."""
    new = path.with_name(path.name + ".new")
    new.write_text(text)
    new.replace(path)


def status_of(client: TestClient, key: str) -> int:
    return client.get("/v1/segments", headers={"x-api-key": key}).status_code


@pytest.fixture
def serving(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> Iterator[tuple[TestClient, Path, dict[str, Any]]]:
    store, _ = trained
    made = {name: new_key(["read"], label=name) for name in ("keep", "also", "revoke", "inline")}
    path = tmp_path / "keys"
    path.write_text("".join(made[n][1] + "\n" for n in ("keep", "also", "revoke")))
    settings = Settings(
        model_store=store.root,
        model_name="customers",
        api_keys=made["inline"][1],
        api_keys_file=path,
        reload_interval=WATCH_INTERVAL,
        record_assignments=False,
    )
    with TestClient(create_app(settings)) as client:
        yield client, path, {name: key for name, (key, _) in made.items()}


def test_a_malformed_or_missing_keys_file_never_leaves_a_removed_key_working(
    serving: tuple[TestClient, Path, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    client, path, key = serving
    caplog.set_level(logging.INFO, logger="app.security")
    assert all(status_of(client, key[n]) == 200 for n in key)
    assert client.get("/readyz").json()["checks"]["api_keys"]["ok"] is True
    assert keys_file_ok(client) == 1
    lines = path.read_text().splitlines()

    # the revoked key's line replaced by a malformed one: the valid lines are the keys
    replace(path, f"{lines[0]}\n{lines[1]}\noops\n")
    wait_until(lambda: status_of(client, key["revoke"]) == 401, "the revoked key refused")
    assert status_of(client, key["keep"]) == 200
    assert status_of(client, key["also"]) == 200
    assert status_of(client, key["inline"]) == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "degraded"
    [problem] = body["checks"]["api_keys"]["problems"]
    assert "line 3" in problem
    assert str(path.parent) not in ready.text
    assert keys_file_ok(client) == 0

    # deleted: no key from the file works, the inline key does
    path.unlink()
    wait_until(lambda: status_of(client, key["keep"]) == 401, "the file's keys refused")
    assert status_of(client, key["also"]) == 401
    assert status_of(client, key["revoke"]) == 401
    assert status_of(client, key["inline"]) == 200
    body = client.get("/readyz").json()
    assert body["status"] == "degraded"
    assert "does not exist" in body["checks"]["api_keys"]["problems"][0]
    assert keys_file_ok(client) == 0

    # restored without the revoked key: back to normal
    replace(path, f"{lines[0]}\n{lines[1]}\n")
    wait_until(lambda: status_of(client, key["keep"]) == 200, "the file's keys back")
    assert status_of(client, key["revoke"]) == 401
    assert client.get("/readyz").json()["checks"]["api_keys"] == {
        "ok": True,
        "file": True,
        "problems": [],
    }
    assert keys_file_ok(client) == 1

    # said once per problem, without a traceback, though the watcher saw each many times
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "Traceback" not in caplog.text
    assert len([r for r in errors if "line 3" in r.getMessage()]) == 1
    assert len([r for r in errors if "does not exist" in r.getMessage()]) == 1


def test_an_unreadable_keys_file_gives_no_key(
    serving: tuple[TestClient, Path, dict[str, str]],
) -> None:
    client, path, key = serving
    saved = path.read_text()
    path.unlink()
    path.mkdir()  # unreadable as a file, whoever runs the test (root reads a chmod 0 file)
    wait_until(lambda: status_of(client, key["keep"]) == 401, "the file's keys refused")
    assert status_of(client, key["inline"]) == 200
    problems = client.get("/readyz").json()["checks"]["api_keys"]["problems"]
    assert "cannot be read" in problems[0]
    path.rmdir()
    replace(path, saved)
    wait_until(lambda: status_of(client, key["keep"]) == 200, "the file's keys back")


def test_readyz_without_a_key_names_no_path_and_with_a_read_key_gives_the_detail(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source, result = trained
    store = ModelStore(tmp_path / "store")
    shutil.copytree(source.root, store.root)
    folder = store.version_dir("customers", result.manifest.version)
    artefact = folder / result.manifest.artefact.file
    artefact.write_bytes(artefact.read_bytes() + b"tampered")
    read, read_line = new_key(["read"])
    assign, assign_line = new_key(["assign"])
    settings = Settings(
        model_store=store.root,
        model_name="customers",
        api_keys=f"{read_line},{assign_line}",
        record_assignments=False,
    )
    caplog.set_level(logging.ERROR)
    with TestClient(create_app(settings)) as client:
        anonymous = client.get("/readyz")
        assert anonymous.status_code == 503
        error = anonymous.json()["checks"]["model"]["error"]
        assert "hash" in error
        assert str(tmp_path) not in anonymous.text
        assert "/" not in error.replace("/readyz", "")  # no path of any kind
        # a key without the read scope, or a wrong one, sees the same
        for header in ({"x-api-key": assign}, {"x-api-key": read[:-4] + "AAAA"}):
            assert client.get("/readyz", headers=header).text == anonymous.text
        detailed = client.get("/readyz", headers={"authorization": f"Bearer {read}"})
        assert detailed.status_code == 503
        assert str(artefact) in detailed.json()["checks"]["model"]["error"]
    assert str(artefact) in caplog.text  # the log has the detail too


def test_segments_keys_list_and_revoke_a_running_services_keys(
    serving: tuple[TestClient, Path, dict[str, str]],
) -> None:
    """`segments keys revoke` rewrites the file the service watches: the key stops working
    without a restart; the others, the comments and a line of several entries stay."""
    from typer.testing import CliRunner

    from app.cli.main import app as cli

    client, path, key = serving
    lines = path.read_text().splitlines()
    other, other_line = new_key(["read"], label="scripts/run")
    replace(path, f"# operators\n{lines[0]}\n{lines[1]}, {other_line}\n{lines[2]}  # old\n")
    wait_until(lambda: status_of(client, other) == 200, "the new key accepted")

    listed = CliRunner().invoke(cli, ["keys", "list", "--file", str(path)])
    assert listed.exit_code == 0, listed.output
    for name in ("keep", "also", "revoke", "scripts/run"):
        assert name in listed.output
    assert lines[0].split(":")[1] not in listed.output  # never a hash

    # an unknown id: refused, naming the file's keys; nothing is written
    before = path.read_text()
    unknown = CliRunner().invoke(cli, ["keys", "revoke", "deadbeef", "--file", str(path)])
    assert unknown.exit_code == 1 and "no key deadbeef" in unknown.output
    assert path.read_text() == before

    # by the whole key, and by label
    revoked = CliRunner().invoke(cli, ["keys", "revoke", key["revoke"], "--file", str(path)])
    assert revoked.exit_code == 0, revoked.output
    wait_until(lambda: status_of(client, key["revoke"]) == 401, "the revoked key refused")
    labelled = CliRunner().invoke(
        cli, ["keys", "revoke", "--label", "scripts/run", "--file", str(path)]
    )
    assert labelled.exit_code == 0 and "revoked 1 key" in labelled.output
    wait_until(lambda: status_of(client, other) == 401, "the labelled key refused")
    assert status_of(client, key["keep"]) == 200 and status_of(client, key["also"]) == 200
    assert path.read_text() == f"# operators\n{lines[0]}\n{lines[1]}\n# old\n"
    before_none = path.read_text()
    none = CliRunner().invoke(cli, ["keys", "revoke", "--label", "gone", "--file", str(path)])
    # a label no key has (a typo in an offboarding script) fails, naming the labels there
    assert none.exit_code == 1 and "no key labelled 'gone'" in none.output
    assert "nothing revoked" in none.output and path.read_text() == before_none


def test_a_keys_file_saved_with_a_byte_order_mark_keeps_its_first_key(
    serving: tuple[TestClient, Path, dict[str, str]],
) -> None:
    """Windows editors save UTF-8 with a byte order mark: it was read as part of the first
    line's key id, so that key was refused (401) while `segments keys list` showed it as
    any other, and `keys revoke` could not find it."""
    from typer.testing import CliRunner

    from app.cli.main import app

    client, path, key = serving
    text = path.read_text()
    first = text.split(":", 1)[0]
    replace(path, "\ufeff" + text.replace(text.splitlines()[1] + "\n", ""))
    wait_until(lambda: status_of(client, key["also"]) == 401, "the new file read")
    assert status_of(client, key["keep"]) == 200
    assert client.get("/readyz").json()["checks"]["api_keys"]["ok"] is True
    listed = CliRunner().invoke(app, ["keys", "list", "--file", str(path)])
    assert listed.exit_code == 0 and "\ufeff" not in listed.output, listed.output
    revoked = CliRunner().invoke(app, ["keys", "revoke", "--file", str(path), first])
    assert revoked.exit_code == 0, revoked.output
    wait_until(lambda: status_of(client, key["keep"]) == 401, "the first key revoked")
    assert status_of(client, key["revoke"]) == 200


def test_keys_list_of_a_file_with_a_malformed_line_exits_1(tmp_path: Path) -> None:
    """The service leaves a malformed line out and reports itself degraded; `keys list`
    named the line but exited 0, so a script checking the file passed it."""
    from typer.testing import CliRunner

    from app.cli.main import app

    path = tmp_path / "keys.txt"
    _, line = new_key(["read"], label="ok")
    path.write_text(f"{line}\ngarbage line\n")
    listed = CliRunner().invoke(app, ["keys", "list", "--file", str(path)])
    assert listed.exit_code == 1, listed.output
    assert "malformed:" in listed.output and "line 2" in listed.output
    assert "ok" in listed.output  # the good key is still listed
    path.write_text(f"{line}\n")
    assert CliRunner().invoke(app, ["keys", "list", "--file", str(path)]).exit_code == 0
