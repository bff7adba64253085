"""A store damaged by hand (an unreadable manifest of an old version, an edited promotion
history): the API, the dashboard and the CLI keep listing what they can and name the damage in
one bounded line, never a 500 or a traceback."""

from __future__ import annotations

import orjson
from typer.testing import CliRunner

from app.cli.main import app as cli
from tests.ui.conftest import Service
from tests.ui.test_http import signed_in


def test_an_unreadable_manifest_leaves_that_version_out_and_names_it(service: Service) -> None:
    new = service.versions.new  # not promoted
    manifest = service.store.root / "customers" / new / "manifest.json"
    manifest.write_text('{not json, "secret": "' + "x" * 5000 + '"}')

    with service.api("read") as api:
        listing = api.get("/v1/models")
    assert listing.status_code == 200, listing.text
    doc = listing.json()
    assert [v["version"] for v in doc["versions"]] == [service.versions.old]
    why = doc["unreadable"][new]
    assert "not valid" in why and len(why) < 300 and "xxxx" not in why  # no file text

    with signed_in(service, "read") as ui:
        page = ui.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert service.versions.old in page.text and "Left out" in page.text and new in page.text

    result = CliRunner().invoke(cli, ["models", "list", "--store", str(service.store.root)])
    assert result.exit_code == 0, result.output
    assert service.versions.old in result.output and f"left out {new}" in result.output
    assert "Traceback" not in result.output


def test_an_edited_promotion_history_is_one_error_not_a_crash(service: Service) -> None:
    pointer = service.store.root / "customers" / "promoted.json"
    written = orjson.loads(pointer.read_bytes())
    wrong = {"x": "it is not a list", "one": "entry 1 is not one", "5": "entry 1 is not one"}
    for key, history in (("x", "x"), ("one", [{"version": service.versions.old}]), ("5", [5])):
        pointer.write_bytes(orjson.dumps({**written, "history": history}))

        with signed_in(service, "admin") as ui:
            home, rollback = ui.get("/ui/"), ui.get("/ui/rollback")
        assert home.status_code == 200 and service.versions.new in home.text
        assert rollback.status_code == 409, rollback.text
        assert "promotion history" in rollback.text

        store = str(service.store.root)
        result = CliRunner().invoke(cli, ["models", "rollback", "--store", store])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "promotion history" in result.output and "promoted.json" in result.output
        assert f"({wrong[key]})" in " ".join(result.output.split())
        with service.api("read") as api:  # still serving the promoted version
            assert api.get("/v1/models").json()["promoted"] == service.versions.old
