"""No two segments of the served version share a name: ``PATCH /v1/segments/{id}`` refuses
(409) a name another segment has, compared as a reader sees it (case, spacing, invisible
characters, full-width forms and Cyrillic or Greek look-alikes of Latin letters do not
count), naming that segment; a name set back to the generated one is checked too, and two
editors racing for one name cannot both get it."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.errors import NameTaken
from app.main import create_app
from app.registry.manifest import Manifest
from app.registry.overrides import SegmentOverrides
from app.registry.store import ModelStore
from app.security import new_key
from app.settings import Settings
from app.training.job import TrainResult

ADMIN, ADMIN_LINE = new_key(["admin", "read"])
HEADERS = {"authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def store(trained: tuple[ModelStore, TrainResult], tmp_path: Path) -> ModelStore:
    copy = ModelStore(tmp_path / "store")
    shutil.copytree(trained[0].root, copy.root)
    (copy.root / "customers" / "segment_overrides.json").unlink(missing_ok=True)
    return copy


@pytest.fixture
def client(store: ModelStore) -> Iterator[TestClient]:
    settings = Settings(
        model_store=store.root,
        model_name="customers",
        api_keys=ADMIN_LINE,
        record_assignments=False,  # segment definitions only
        access_log=False,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def names(client: TestClient) -> dict[str, str]:
    listed = client.get("/v1/segments", headers=HEADERS).json()["segments"]
    return {s["id"]: s["name"] for s in listed}


def rename(client: TestClient, segment_id: str, name: str | None) -> httpx.Response:
    return client.patch(f"/v1/segments/{segment_id}", json={"name": name}, headers=HEADERS)


def test_a_name_another_segment_has_is_refused_naming_that_segment(client: TestClient) -> None:
    before = names(client)
    one, two, three = list(before)[:3]
    taken = f"  {before[two].upper()} "
    answer = client.patch(f"/v1/segments/{one}", json={"name": taken}, headers=HEADERS)
    assert answer.status_code == 409, answer.text
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    assert problem["type"] == "/problems/name-taken" and problem["errors"][0]["field"] == "name"
    assert f"segment {two} " in problem["detail"] and repr(before[two]) in problem["detail"]
    assert names(client) == before  # nothing changed

    assert rename(client, one, "VIPs").status_code == 200
    assert rename(client, one, " vips").status_code == 200
    refused = rename(client, three, "VIPS ")
    assert refused.status_code == 409 and f"segment {one} " in refused.json()["detail"]
    # one's generated name is free now; once two has it, one cannot go back to it
    assert rename(client, two, before[one]).status_code == 200
    back = rename(client, one, None)
    assert back.status_code == 409 and f"segment {two} " in back.json()["detail"]
    assert names(client) == {**before, one: " vips", two: before[one]}
    # other fields are never refused for a name
    other = client.patch(f"/v1/segments/{one}", json={"action": "Call"}, headers=HEADERS)
    assert other.status_code == 200


@pytest.mark.parametrize(
    "look_alike",
    [
        "ＶＩＰＳ",  # full-width
        "V\u200bIPs",  # a zero-width space inside
        "\ufeffVIPs",  # a byte-order mark in front
        "VI\u00adPs",  # a soft hyphen
        "vips\u00a0",  # a no-break space after
        "VIPs\u3164",  # a Hangul filler (a letter that shows nothing)
        "VIPs\u2800",  # the blank Braille pattern
        "VIPs\u034f",  # a combining grapheme joiner
        "V\u0406Ps",  # a Cyrillic capital I
        "vi\u0440s",  # a Cyrillic small er, drawn as p
        "V\u0399\u03a1s",  # Greek capital iota and rho
        "\u03bdIPs",  # a Greek small nu, drawn as v (its capital as N)
    ],
)
def test_a_name_that_only_looks_different_is_taken_too(client: TestClient, look_alike: str) -> None:
    one, two = list(names(client))[:2]
    assert rename(client, one, "VIPs").status_code == 200
    before = names(client)
    refused = rename(client, two, look_alike)
    assert refused.status_code == 409, (look_alike, refused.text)
    detail = refused.json()["detail"]
    assert f"segment {one} " in detail and f"'VIPs', which {look_alike!r} reads as" in detail
    assert names(client) == before


@pytest.mark.parametrize(
    ("taken", "look_alike"),
    [
        ("nice", "\u03b7ice"),  # a Greek small eta, drawn as n (its capital as H)
        ("ultra", "\u03c5ltra"),  # a Greek small upsilon, drawn as u (its capital as Y)
        ("Cool", "\u03f9ool"),  # a Greek capital lunate sigma (NFKC: a sigma, Σ)
        ("cool", "\u03f2ool"),  # its small form (NFKC: ς)
    ],
)
def test_a_small_letter_drawn_as_another_latin_letter_than_its_capital_is_taken_too(
    client: TestClient, taken: str, look_alike: str
) -> None:
    """The look-alikes were compared after case folding, so a small letter read as the Latin
    letter its capital looks like: the Greek 'ηice' passed beside 'nice' (as 'hice')."""
    one, two = list(names(client))[:2]
    assert rename(client, one, taken).status_code == 200
    refused = rename(client, two, look_alike)
    assert refused.status_code == 409, (look_alike, refused.text)


def test_a_word_of_another_script_is_its_own_name(client: TestClient) -> None:
    """Only letters drawn as Latin ones fold: the Russian "Вип" is not "VIPs" (nor "bип")."""
    one, two, three = list(names(client))[:3]
    assert rename(client, one, "VIPs").status_code == 200
    assert rename(client, two, "Вип").status_code == 200
    assert rename(client, three, "ВИП").status_code == 409  # the same word, upper case


@pytest.mark.parametrize(
    "blank",
    [" ", "\u00a0\u3000", "\u200b", "\u200d\ufeff", "\u2060", "\u3164", "\u2800", "\u0301",
     "\u115f\u1160", "\u17b4", "\ufe0f"],
)  # fmt: skip
def test_a_blank_or_invisible_name_is_refused(client: TestClient, blank: str) -> None:
    before = names(client)
    one = next(iter(before))
    refused = rename(client, one, blank)
    assert refused.status_code == 422, (blank, refused.text)
    assert refused.json()["errors"][0]["field"] == "name"
    assert "visible character" in refused.json()["errors"][0]["message"]
    assert names(client) == before


@pytest.mark.parametrize("shown", ["\u00b4", "\u00a8", "\u02dc x", "VIP\u00b4s"])
def test_a_spacing_accent_is_a_visible_name(client: TestClient, shown: str) -> None:
    """The contract fuzzer found `´` (U+00B4) refused as blank: its NFKC form is a space and a
    combining accent, but as written it shows."""
    one = next(iter(names(client)))
    accepted = rename(client, one, shown)
    assert accepted.status_code == 200, (shown, accepted.text)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f468\U0001f469\U0001f467"),
        ("\U0001f469\u200d\U0001f4bb", "\U0001f469\U0001f4bb"),
        ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
         "\u0645\u06cc\u062e\u0648\u0627\u0647\u0645"),
    ],
    ids=["family emoji", "technologist emoji", "persian"],
)  # fmt: skip
def test_names_a_joiner_makes_different_are_both_accepted(
    client: TestClient, one: str, other: str
) -> None:
    """A zero-width joiner changes what is shown (one family emoji against three people; a
    Persian word's letters joined or not): an audit's such pairs were refused as taken."""
    first, second = list(names(client))[:2]
    assert rename(client, first, one).status_code == 200
    answer = rename(client, second, other)
    assert answer.status_code == 200, answer.text
    assert names(client)[second] == other


def test_two_editors_racing_for_one_name_cannot_both_get_it(
    store: ModelStore, trained: tuple[ModelStore, TrainResult]
) -> None:
    manifest = trained[1].manifest
    one, two = manifest.segments[0].id, manifest.segments[1].id
    overrides = SegmentOverrides(store.root / "customers")
    for round_ in range(30):
        won: list[str] = []
        start = threading.Barrier(2)
        threads = [
            threading.Thread(
                target=_edit, args=(overrides, s, f"Race {round_}", start, won, manifest)
            )
            for s in (one, two)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, round_
        overrides.update(won[0], {"name": None})


def _edit(
    overrides: SegmentOverrides,
    segment_id: str,
    name: str,
    start: threading.Barrier,
    won: list[str],
    manifest: Manifest,
) -> None:
    start.wait()
    try:
        overrides.update(segment_id, {"name": name}, manifest)
        won.append(segment_id)
    except NameTaken:
        pass


def test_an_edited_name_another_segment_generates_after_a_retrain_is_served_once(
    trained: tuple[Any, Any],
) -> None:
    """Found by an audit: a name PATCHed onto one segment, then generated for another by a
    retrain (or a promoted version), was served twice. The edit keeps it; the generated one
    says which segment it is."""
    from app.registry.overrides import name_key, serving_segments

    _, result = trained
    first, second = result.manifest.segments[:2]
    served = serving_segments(result.manifest, {first.id: {"name": second.name.upper()}})
    assert served[first.id].name == second.name.upper()
    assert served[second.id].name == f"{second.name} ({second.id})"
    keys = [name_key(s.name) for s in served.values()]
    assert len(set(keys)) == len(keys)


def test_two_edits_of_one_name_are_served_once_when_a_version_has_both_segments(
    trained: tuple[Any, Any],
) -> None:
    """Found by a walk through promote and rollback: seg-002 was renamed 'Recent buyers'
    while a version without seg-003 served, seg-003 'recent buyers' while one without seg-002
    served (each PATCH checked against the served version only); a rollback to a version with
    both served the name twice. The first keeps it; the other says which segment it is."""
    from app.registry.overrides import name_key, serving_segments

    _, result = trained
    first, second, third = result.manifest.segments[:3]
    edits = {first.id: {"name": "Recent buyers"}, third.id: {"name": "recent  BUYERS"}}
    served = serving_segments(result.manifest, edits)
    assert served[first.id].name == "Recent buyers"
    assert served[third.id].name == f"recent  BUYERS ({third.id})"
    assert served[second.id].name == second.name
    keys = [name_key(s.name) for s in served.values()]
    assert len(set(keys)) == len(keys)
