"""``segments assign --input FILE --record`` on a cp1252 file (``[data] encoding``), against
real Redis: every customer recorded under the id written in the file (``Müller-0001``, not
``M�ller-0001``), in the segment the same data as UTF-8 gets; a rejected row's id too."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from rich.console import Console

from app.history import HistoryConfig
from app.recording import RunRequest, record_file
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.job import train
from tests.history.test_record_run import _record, _state
from tests.history.test_record_run import clean as clean  # fixtures of the recording tests
from tests.training.test_csv_encoding import EU, table_config, windows_customers, write


def test_a_cp1252_file_is_recorded_under_its_ids_in_the_segments_of_its_utf8_copy(
    config: HistoryConfig, tmp_path: Path, clean: None
) -> None:
    frame = windows_customers(300)
    windows = write(frame, tmp_path / "windows.csv", "cp1252", eu=True)
    # a row of another field count: rejected, its id written as the file writes it
    with windows.open("ab") as handle:
        handle.write("Müller-9999;1,5;3;Zürich;extra\r\n".encode("cp1252"))
    store = ModelStore(tmp_path / "store")
    raw = table_config(windows, "windows", encoding="cp1252", **EU)
    train(parse_config(raw, base_dir=tmp_path), store, promote=True)
    estimator = store.load("windows").estimator
    expected = dict(zip(frame["Kundennr"], estimator.predict(frame), strict=True))

    output = tmp_path / "tagged.csv"
    state = _record((store, "windows"), config, windows, tmp_path / "runs", id_column="Kundennr")
    assert state.finished and (state.counts.customers, state.counts.rejected) == (len(frame), 1)
    recorded = _state(config, list(expected), set(expected.values()))
    assert {c: v[0] for c, v in recorded["customers"].items()} == expected
    assert state.rejects is not None
    rejects = pd.read_csv(state.rejects, keep_default_na=False, encoding="utf-8")
    assert rejects["customer_id"].tolist() == ["Müller-9999"]

    # --output beside --record: the tagged file holds the ids as written
    request = RunRequest(windows, output, "windows", tmp_path / "runs2", id_column="Kundennr")
    record_file(store, None, request, config, Console(file=io.StringIO()))
    tagged = pd.read_csv(output, dtype=str)
    assert dict(zip(tagged["Kundennr"], tagged["segment_id"], strict=True)) == expected
