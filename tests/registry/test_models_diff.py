"""`segments models diff OLD NEW --data FILE`: how a file's customers move between versions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from app.cli.main import app
from tests.versions import Versions


def _diff(versions: Versions, data: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        [
            "models",
            "diff",
            versions.old,
            versions.new,
            "--data",
            str(data),
            "--store",
            str(versions.store.root),
            "--model",
            "customers",
        ],
    )
    return result.exit_code, " ".join(result.output.split())


def test_a_file_with_blank_cells_is_compared_as_tagging_reads_it(
    versions: Versions, customers_csv: Path, tmp_path: Path
) -> None:
    """Blank cells are missing values (they reached scikit-learn as text: a traceback), and
    the count of customers who keep their id is said once, by id."""
    frame = pd.read_csv(customers_csv, dtype={"customer_id": str}).head(400)
    frame["monetary"] = frame["monetary"].astype(object)
    frame.loc[[3, 70], "monetary"] = " "
    source = tmp_path / "blanks.csv"
    frame.to_csv(source, index=False)
    code, text = _diff(versions, source)
    assert code == 0, text
    old, new = (
        versions.store.load("customers", versions.old),
        versions.store.load("customers", versions.new),
    )
    parsed = frame.assign(monetary=pd.to_numeric(frame["monetary"], errors="coerce"))
    kept = int((old.estimator.predict(parsed) == new.estimator.predict(parsed)).sum())
    assert text.count("keep their segment id") == 1
    assert f"{kept:,} of 400 customers keep their segment id" in text


def test_text_in_a_numeric_column_is_one_error_naming_it(
    versions: Versions, customers_csv: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(customers_csv, dtype={"customer_id": str}).head(50)
    frame["monetary"] = frame["monetary"].astype(object)
    frame.loc[5, "monetary"] = "lots"
    source = tmp_path / "junk.csv"
    frame.to_csv(source, index=False)
    code, text = _diff(versions, source)
    assert code == 1
    assert "error:" in text and "'monetary'" in text and "'lots'" in text
    assert "Traceback" not in text


def test_segments_are_labelled_with_the_names_the_service_gives(
    versions: Versions, customers_csv: Path, tmp_path: Path
) -> None:
    """Found by an audit: `models diff` labelled segments with their generated names while the
    service gave the edited ones (`PATCH /v1/segments/{id}`)."""
    import shutil

    from app.registry.overrides import SegmentOverrides
    from app.registry.store import ModelStore

    store = ModelStore(tmp_path / "store")
    shutil.copytree(versions.store.root, store.root)
    first = store.manifest("customers", versions.new).segments[0].id
    SegmentOverrides(store.root / "customers").update(first, {"name": "VIP enterprise"})
    from app.registry.diff import migration_matrix

    matrix, _ = migration_matrix(store, "customers", versions.old, versions.new, customers_csv)
    assert f"{first} VIP enterprise" in list(matrix.columns)


def test_a_log_models_versions_are_compared_on_a_log(tmp_path: Path) -> None:
    """A model trained on a transaction log was compared on a log by reading it as a table:
    'box_events.csv lacks feature column(s): frequency, monetary, recency_days, tenure_days',
    where `segments assign --input` takes the same log. The log's customers are derived as
    tagging derives them (as of the day after its last line) and counted in the matrix."""
    import numpy as np

    rng = np.random.default_rng(4)
    rows = [
        (f"c{c:03d}", f"2024-{month:02d}-{1 + c % 27:02d}", round(float(rng.gamma(2, 20)), 2))
        for c in range(60)
        for month in range(1, 13)
        if rng.random() < [0.2, 0.5, 0.9][c % 3]
    ]
    log = tmp_path / "orders.csv"
    pd.DataFrame(rows, columns=["customer", "day", "amount"]).to_csv(log, index=False)
    store = tmp_path / "store"
    versions = []
    for k in (2, 3):
        config = tmp_path / f"k{k}.toml"
        config.write_text(
            f'[data]\npath = "{log}"\nkind = "transactions"\n[data.transactions]\n'
            'customer = "customer"\ntimestamp = "day"\namount = "amount"\n'
            '[[features]]\nname = "recency_days"\n[[features]]\nname = "frequency"\n'
            f'[model]\nname = "rfm"\nk_min = {k}\nk_max = {k}\nmin_share = 0.1\n'
        )
        trained = CliRunner().invoke(app, ["train", "--config", str(config), "--store", str(store)])
        assert trained.exit_code == 0, trained.output
        versions.append(trained.output.split()[-1])
    result = CliRunner().invoke(
        app,
        ["models", "diff", *versions, "--data", str(log), "--store", str(store), "--model", "rfm"],
    )
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    customers = len({row[0] for row in rows})
    assert f"of {customers:,} customers keep" in said, said
