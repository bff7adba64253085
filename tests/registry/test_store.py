"""The model store: atomic versions, atomic promotion, and verified loading."""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import orjson
import pytest
import sklearn
from sklearn.cluster import KMeans

from app.errors import IntegrityError, StoreError, StoreWriteError
from app.registry.manifest import (
    ArtefactInfo,
    DataInfo,
    IdMatching,
    Manifest,
    Quality,
    SegmentInfo,
    Selection,
    SelectionPoint,
)
from app.registry.store import (
    MANIFEST_FILE,
    VERSION_PATTERN,
    ModelStore,
    new_version_id,
    validate_model_name,
    validate_version,
)

MODEL = "customers"
X = np.array([[0.0, 0.0], [0.1, 0.2], [0.2, 0.1], [5.0, 5.0], [5.1, 4.9], [4.9, 5.2]])


def version_at(minute: int) -> str:
    """A fixed, valid version id; ids sort by ``minute``."""
    return f"20240501-12{minute:02d}00-{minute:06x}"


def fitted_kmeans() -> KMeans:
    return KMeans(n_clusters=2, n_init=1, random_state=0).fit(X)


def make_manifest(
    version: str,
    artefact: ArtefactInfo,
    *,
    segment_ids: tuple[str, ...] = ("seg-001", "seg-002"),
    sklearn_version: str = sklearn.__version__,
) -> Manifest:
    segments = [
        SegmentInfo(
            id=seg_id,
            name=f"Segment {i}",
            kind="cluster",
            description="plausible customers",
            size=3,
            share=1 / len(segment_ids),
        )
        for i, seg_id in enumerate(segment_ids)
    ]
    return Manifest(
        model_name=MODEL,
        version=version,
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
        artefact=artefact,
        libraries={"scikit-learn": sklearn_version, "numpy": np.__version__},
        data=DataInfo(
            path="customers.csv",
            kind="table",
            rows=6,
            source_rows=6,
            fingerprint="0" * 64,
        ),
        config={"algorithm": "kmeans"},
        features=[],
        algorithm="kmeans",
        seed=0,
        k=len(segment_ids),
        selection=Selection(
            criterion="silhouette",
            sample_size=6,
            k_min=2,
            k_max=2,
            min_share=0.05,
            chosen_k=2,
            curve=[SelectionPoint(k=2, silhouette=0.9, min_share=0.5, admissible=True)],
        ),
        quality=Quality(
            silhouette=0.9,
            davies_bouldin=0.1,
            calinski_harabasz=100.0,
            stability_ari=1.0,
            bootstraps=5,
            sample_size=6,
        ),
        segments=segments,
        id_matching=IdMatching(previous_version=None),
    )


def write_manifest(folder: Path, manifest: Manifest) -> None:
    (folder / "manifest.json").write_bytes(
        orjson.dumps(manifest.model_dump(mode="json"), option=orjson.OPT_INDENT_2)
    )


def add_version(store: ModelStore, version: str, estimator: Any = None, **kwargs: Any) -> None:
    with store.register(MODEL, version) as folder:
        artefact = store.write_artefact(folder, estimator or fitted_kmeans())
        write_manifest(folder, make_manifest(version, artefact, **kwargs))
        (folder / "report.html").write_text("<html></html>")


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


# -- version ids and names -----------------------------------------------------------------


def test_version_ids_are_utc_time_ordered_and_well_formed() -> None:
    ids = [new_version_id(datetime(2024, 5, 1, 12, m, tzinfo=UTC)) for m in (1, 2, 3)]
    assert all(VERSION_PATTERN.fullmatch(v) for v in ids)
    assert ids == sorted(ids)
    assert ids[0].startswith("20240501-120100-")
    paris = timezone(timedelta(hours=2))
    assert new_version_id(datetime(2024, 5, 1, 14, 0, tzinfo=paris)).startswith("20240501-1200")
    assert VERSION_PATTERN.fullmatch(new_version_id())


RULE = "is not a model name: letters, digits"


@pytest.mark.parametrize("bad", ["../x", "", " ", "a b", "x/y", ".hidden", "..", "a\\b"])
def test_invalid_model_names_are_refused(store: ModelStore, bad: str) -> None:
    with pytest.raises(StoreError, match=RULE):
        validate_model_name(bad)
    with pytest.raises(StoreError, match=RULE), store.register(bad, version_at(1)):
        pass
    with pytest.raises(StoreError, match=RULE):
        store.versions(bad)
    assert not store.root.exists()


@pytest.mark.parametrize(
    "bad", ["../x", "", " ", "20240501-120000-abc de", "20240501-120000-ABCDEF", "../../etc"]
)
def test_invalid_versions_are_refused(store: ModelStore, bad: str) -> None:
    with pytest.raises(StoreError, match="invalid version id"):
        validate_version(bad)
    with pytest.raises(StoreError, match="invalid version id"), store.register(MODEL, bad):
        pass
    for call in (store.manifest, store.load, store.promote):
        with pytest.raises(StoreError, match="invalid version id"):
            call(MODEL, bad)
    assert not store.root.exists()


# -- registering versions ------------------------------------------------------------------


def test_register_then_load_round_trip(store: ModelStore) -> None:
    original = fitted_kmeans()
    version = version_at(1)
    add_version(store, version, original)

    loaded = store.load(MODEL, version)

    assert loaded.path == store.root / MODEL / version
    assert sorted(p.name for p in loaded.path.iterdir()) == [
        "manifest.json",
        "model.joblib",
        "report.html",
    ]
    assert loaded.manifest == store.manifest(MODEL, version)
    assert loaded.manifest.artefact.bytes == (loaded.path / "model.joblib").stat().st_size
    np.testing.assert_array_equal(loaded.estimator.predict(X), original.predict(X))
    assert store.model_names() == [MODEL]


def test_store_creates_nothing_until_a_write(store: ModelStore) -> None:
    assert store.model_names() == []
    assert store.versions(MODEL) == []
    assert store.promoted(MODEL) is None
    assert store.mtime_token(MODEL) == (0, 0)
    assert not store.root.exists()


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_an_error_inside_register_leaves_no_folder(store: ModelStore, error: BaseException) -> None:
    version = version_at(1)
    with pytest.raises(type(error)), store.register(MODEL, version) as folder:
        artefact = store.write_artefact(folder, fitted_kmeans())
        write_manifest(folder, make_manifest(version, artefact))
        raise error
    assert not store.root.exists()


def test_a_failed_register_keeps_the_existing_versions(store: ModelStore) -> None:
    add_version(store, version_at(1))
    with pytest.raises(RuntimeError), store.register(MODEL, version_at(2)) as folder:
        store.write_artefact(folder, fitted_kmeans())
        raise RuntimeError("boom")
    assert [p.name for p in (store.root / MODEL).iterdir()] == [version_at(1)]


def test_an_incomplete_version_is_refused_and_removed(store: ModelStore) -> None:
    version = version_at(1)
    with pytest.raises(StoreError, match="no manifest.json"), store.register(MODEL, version) as f:
        store.write_artefact(f, fitted_kmeans())
    with pytest.raises(StoreError, match="no model.joblib"), store.register(MODEL, version) as f:
        write_manifest(f, make_manifest(version, ArtefactInfo(sha256="0" * 64, bytes=1)))
    assert not store.root.exists()


def test_a_version_is_invisible_until_register_completes(store: ModelStore) -> None:
    version = version_at(1)
    with store.register(MODEL, version) as folder:
        artefact = store.write_artefact(folder, fitted_kmeans())
        write_manifest(folder, make_manifest(version, artefact))
        assert folder.parent == store.root / MODEL
        assert folder.name.startswith(f".tmp-{version}-")
        assert store.versions(MODEL) == []
    assert store.versions(MODEL) == [version]


def test_an_existing_version_is_refused(store: ModelStore) -> None:
    version = version_at(1)
    add_version(store, version)
    before = (store.root / MODEL / version / "model.joblib").read_bytes()
    with pytest.raises(StoreError, match="exists already"), store.register(MODEL, version):
        pytest.fail("register must refuse before yielding")
    assert (store.root / MODEL / version / "model.joblib").read_bytes() == before
    assert sorted(p.name for p in (store.root / MODEL).iterdir()) == [version]


def test_versions_are_sorted_and_temp_folders_ignored(store: ModelStore) -> None:
    for minute in (3, 1, 2):
        add_version(store, version_at(minute))
    (store.root / MODEL / f".tmp-{version_at(4)}-deadbeef").mkdir()  # a killed writer's leftovers
    (store.root / MODEL / version_at(5)).mkdir()  # no manifest: not a complete version
    assert store.versions(MODEL) == [version_at(1), version_at(2), version_at(3)]
    assert [m.version for m in store.manifests(MODEL)] == store.versions(MODEL)


def test_a_killed_writers_old_temp_folder_is_removed_by_the_next_register(
    store: ModelStore,
) -> None:
    add_version(store, version_at(1))
    old = store.root / MODEL / f".tmp-{version_at(2)}-deadbeef"
    fresh = store.root / MODEL / f".tmp-{version_at(3)}-0badcafe"  # a writer at work now
    for folder in (old, fresh):
        folder.mkdir()
        (folder / MANIFEST_FILE).write_text("{}")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    add_version(store, version_at(4))
    assert not old.exists()
    assert fresh.is_dir() and (fresh / MANIFEST_FILE).is_file()
    assert store.versions(MODEL) == [version_at(1), version_at(4)]


def test_unknown_version_names_the_known_ones(store: ModelStore) -> None:
    add_version(store, version_at(1))
    with pytest.raises(StoreError, match=f"unknown version .* of model {MODEL}") as info:
        store.manifest(MODEL, version_at(2))
    assert f"known: {version_at(1)}" in str(info.value)


def test_unknown_version_names_at_most_ten_known_ones(store: ModelStore) -> None:
    """A model retrained nightly for years: the error stays a line, the newest ten named."""
    for minute in range(1, 31):
        add_version(store, version_at(minute))
    with pytest.raises(StoreError) as info:
        store.manifest(MODEL, version_at(59))
    message = str(info.value)
    assert version_at(30) in message and version_at(21) in message, message
    assert version_at(20) not in message and "20 earlier and" in message, message


def test_a_version_of_another_model_says_which(store: ModelStore) -> None:
    """A version id copied from `models list --model shop`, promoted without the model:
    the error says whose version it is and how to name that model."""
    add_version(store, version_at(1))
    with store.register("shop", version_at(2)) as folder:
        manifest = make_manifest(version_at(2), store.write_artefact(folder, fitted_kmeans()))
        write_manifest(folder, manifest.model_copy(update={"model_name": "shop"}))
    with pytest.raises(StoreError) as info:
        store.manifest(MODEL, version_at(2))
    assert "it is a version of model 'shop' (?model=shop, --model shop)" in str(info.value)
    with pytest.raises(StoreError) as nowhere:
        store.manifest(MODEL, version_at(3))
    assert "it is a version of" not in str(nowhere.value)


# -- promotion -------------------------------------------------------------------------------


def test_promote_and_rollback_sequence(store: ModelStore) -> None:
    a, b, c = version_at(1), version_at(2), version_at(3)
    for version in (a, b, c):
        add_version(store, version)
    with pytest.raises(StoreError, match="no promoted version; run `segments models promote`"):
        store.load(MODEL)
    with pytest.raises(StoreError) as unpromoted:
        store.rollback(MODEL)
    assert str(unpromoted.value) == (
        f"model {MODEL}: nothing to roll back to: no version is promoted; promote one "
        f"(segments models promote VERSION --model {MODEL})"
    )

    for version in (a, b, c):
        store.promote(MODEL, version)
    assert store.promoted(MODEL) == c
    assert store.load(MODEL).manifest.version == c

    assert store.rollback(MODEL) == b
    assert store.promoted(MODEL) == b
    assert store.rollback(MODEL) == a
    assert store.promoted(MODEL) == a
    with pytest.raises(StoreError) as first:
        store.rollback(MODEL)
    # what to do instead is said (a new user's first rollback was told no more than that)
    assert str(first.value) == (
        f"model {MODEL}: nothing to roll back to: {a} is the first version promoted (a "
        "rollback serves the version promoted before the serving one); to serve another, "
        f"promote it (segments models promote VERSION --model {MODEL}; `segments models list "
        f"--model {MODEL}` lists them)"
    )
    assert store.promoted(MODEL) == a

    history = store.promotion_history(MODEL)
    assert [(h["version"], h["action"]) for h in history] == [
        (a, "promote"),
        (b, "promote"),
        (c, "promote"),
        (b, "rollback"),
        (a, "rollback"),
    ]
    assert all(datetime.fromisoformat(h["promoted_at"]).tzinfo is not None for h in history)


def test_rollback_returns_to_the_previously_serving_version(store: ModelStore) -> None:
    a, b = version_at(1), version_at(2)
    for version in (a, b):
        add_version(store, version)
    for version in (a, b, a):
        store.promote(MODEL, version)
    assert store.rollback(MODEL) == b
    assert store.rollback(MODEL) == a


def test_cli_rollback_refuses_a_version_that_would_not_load(store: ModelStore) -> None:
    """Found with a damaged store: `segments models promote` refuses a truncated artefact, but
    `segments models rollback` moved the pointer to one and said "rolled back" (exit 0); the
    running service kept the old version (its readiness naming the hash mismatch) and a
    restart would have served nothing. The rollback is refused and the pointer stays."""
    from typer.testing import CliRunner

    from app.cli.main import app

    a, b = version_at(1), version_at(2)
    for version in (a, b):
        add_version(store, version)
        store.promote(MODEL, version)
    artefact = store.version_dir(MODEL, a) / "model.joblib"
    whole = artefact.read_bytes()
    artefact.write_bytes(whole[:100])
    args = ["models", "rollback", "--store", str(store.root), "--model", MODEL]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1, refused.output
    assert "hash mismatch" in refused.output
    assert store.promoted(MODEL) == b
    assert len(store.promotion_history(MODEL)) == 2
    artefact.write_bytes(whole)
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert store.promoted(MODEL) == a


def test_models_list_says_when_the_promoted_versions_folder_is_gone(store: ModelStore) -> None:
    """A promoted version's folder removed by hand: the list showed the others, none marked
    promoted, without a word (running services keep what they loaded; a restart serves
    nothing). It says so, and how to fix it."""
    import shutil

    from typer.testing import CliRunner

    from app.cli.main import app

    a, b = version_at(1), version_at(2)
    for version in (a, b):
        add_version(store, version)
        store.promote(MODEL, version)
    args = ["models", "list", "--store", str(store.root), "--model", MODEL]
    assert "not in the store" not in CliRunner().invoke(app, args).output
    shutil.rmtree(store.version_dir(MODEL, b))
    listed = CliRunner().invoke(app, args)
    assert listed.exit_code == 0, listed.output
    assert f"the promoted version {b} is not in the store" in listed.output
    assert "segments models promote VERSION" in listed.output


def test_a_rollback_checked_against_another_target_moves_nothing(store: ModelStore) -> None:
    a, b, c = version_at(1), version_at(2), version_at(3)
    for version in (a, b, c):
        add_version(store, version)
        store.promote(MODEL, version)
    with pytest.raises(StoreError, match="no longer"):
        store.rollback(MODEL, expected=a)  # verified a, but the history moved on to b
    assert store.promoted(MODEL) == c
    assert store.rollback(MODEL, expected=b) == b


def test_a_new_segment_id_registered_meanwhile_by_another_version_is_refused(
    store: ModelStore,
) -> None:
    """Found running three retrains of one model at once: two numbered a new segment above
    the same highest id, and seg-014 was "Pro plan, organic" in one version and "Low tenure,
    low spend" in the other. The later registration is refused, leaving nothing behind."""
    add_version(store, version_at(1), segment_ids=("seg-001", "seg-002"))

    def register(version: str, new: str) -> None:
        with store.register(MODEL, version) as folder:
            artefact = store.write_artefact(folder, fitted_kmeans())
            manifest = make_manifest(version, artefact, segment_ids=("seg-001", new))
            matching = IdMatching(previous_version=version_at(1), new=[new])
            write_manifest(folder, manifest.model_copy(update={"id_matching": matching}))

    register(version_at(2), "seg-003")  # both numbered from seg-002, the highest id then
    with pytest.raises(StoreError, match=r"seg-003 .*train again"):
        register(version_at(3), "seg-003")
    assert store.versions(MODEL) == [version_at(1), version_at(2)]
    assert not list(store.root.joinpath(MODEL).glob(".tmp-*"))
    register(version_at(4), "seg-004")  # a new id nobody holds: registered
    assert store.versions(MODEL)[-1] == version_at(4)


def _promote_many(root: str, versions: list[str], rounds: int) -> int:
    """Promote ``versions`` in turn, ``rounds`` times; how many moved the pointer."""
    from app.registry.store import ModelStore as Store

    other = Store(Path(root))
    moved = 0
    for i in range(rounds):
        moved += other.promote(MODEL, versions[i % len(versions)])
    return moved


def test_concurrent_promotions_keep_every_entry_of_the_history(store: ModelStore) -> None:
    """An audit's workers promoted two versions back and forth: 108 moves of the pointer,
    71 entries in its history (each read, appended and replaced it unlocked)."""
    import multiprocessing

    a, b = version_at(1), version_at(2)
    for version in (a, b):
        add_version(store, version)
    store.promote(MODEL, a)
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        orders = [[a, b], [b, a], [a, b], [b, a]]
        moved = pool.starmap(_promote_many, [(str(store.root), o, 40) for o in orders])
    history = store.promotion_history(MODEL)
    # every promotion that found another version serving appended exactly one entry
    assert len(history) == 1 + sum(moved), (len(history), sum(moved))
    assert all(h["version"] != g["version"] for h, g in itertools.pairwise(history))


def test_promoting_the_current_version_is_a_no_op(store: ModelStore) -> None:
    add_version(store, version_at(1))
    store.promote(MODEL, version_at(1))
    token = store.mtime_token(MODEL)
    store.promote(MODEL, version_at(1))
    assert store.mtime_token(MODEL) == token
    assert len(store.promotion_history(MODEL)) == 1


def test_promoting_an_unknown_version_is_refused(store: ModelStore) -> None:
    add_version(store, version_at(1))
    with pytest.raises(StoreError, match="unknown version"):
        store.promote(MODEL, version_at(2))
    assert store.promoted(MODEL) is None


def test_the_pointer_is_replaced_atomically(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = version_at(1), version_at(2)
    for version in (a, b):
        add_version(store, version)
    replaced: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def recording_replace(src: Path, dst: Path) -> None:
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    store.promote(MODEL, a)
    [(src, dst)] = replaced
    assert src.parent == dst.parent == store.root / MODEL
    assert dst.name == "promoted.json"
    assert not src.exists()
    assert orjson.loads(dst.read_bytes())["version"] == a
    token = store.mtime_token(MODEL)

    def failing_replace(src: Path, dst: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(StoreWriteError, match="disk full"):
        store.promote(MODEL, b)
    assert store.promoted(MODEL) == a
    assert store.mtime_token(MODEL) == token
    left = sorted(p.name for p in (store.root / MODEL).iterdir())  # no temporary file left
    assert left == sorted([a, b, "promoted.json", ".pointer.lock"])


def test_mtime_token_changes_on_every_promotion(store: ModelStore) -> None:
    a, b = version_at(1), version_at(2)
    for version in (a, b):
        add_version(store, version)
    tokens = [store.mtime_token(MODEL)]
    for version in (a, b, a):
        store.promote(MODEL, version)
        tokens.append(store.mtime_token(MODEL))
    assert len(set(tokens)) == len(tokens)
    assert tokens[0] == (0, 0)


# -- verified loading ------------------------------------------------------------------------


class _Boobytrap:
    """Unpickling this creates ``marker``: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_a_tampered_artefact_is_refused(store: ModelStore) -> None:
    version = version_at(1)
    add_version(store, version)
    artefact = store.root / MODEL / version / "model.joblib"
    with artefact.open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError, match="hash mismatch: refusing to load"):
        store.load(MODEL, version)


def test_a_swapped_pickle_is_never_unpickled(store: ModelStore, tmp_path: Path) -> None:
    version = version_at(1)
    add_version(store, version)  # the manifest keeps the ORIGINAL artefact's hash
    marker = tmp_path / "pwned"
    artefact = store.root / MODEL / version / "model.joblib"
    joblib.dump(_Boobytrap(marker), artefact)

    with pytest.raises(IntegrityError, match="can run code"):
        store.load(MODEL, version)
    assert not marker.exists()

    joblib.load(artefact)  # the payload is live: loading it unchecked does run it
    assert marker.exists()


def test_a_different_scikit_learn_version_is_refused(store: ModelStore) -> None:
    version = version_at(1)
    add_version(store, version, sklearn_version="0.24.2")
    with pytest.raises(IntegrityError, match="0.24.2") as info:
        store.load(MODEL, version)
    assert sklearn.__version__ in str(info.value)


def test_a_manifest_pointing_outside_its_folder_is_refused(store: ModelStore) -> None:
    version = version_at(1)
    add_version(store, version)
    folder = store.root / MODEL / version
    manifest = store.manifest(MODEL, version)
    escaped = manifest.model_copy(
        update={"artefact": manifest.artefact.model_copy(update={"file": "../model.joblib"})}
    )
    write_manifest(folder, escaped)
    with pytest.raises(IntegrityError, match="names artefact"):
        store.load(MODEL, version)


# -- segment ids -------------------------------------------------------------------------------


def test_max_segment_number_spans_every_version(store: ModelStore) -> None:
    assert store.max_segment_number(MODEL) == 0
    add_version(store, version_at(1), segment_ids=("seg-001", "seg-007"))
    add_version(store, version_at(2), segment_ids=("seg-001", "seg-003", "rule-new"))
    assert store.max_segment_number(MODEL) == 7
