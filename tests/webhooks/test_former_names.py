"""After a promotion, a webhook names a segment the new version dropped as the versions
before named it (a rescore moves every customer out of such a segment): not ``null``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from app.registry.overrides import SegmentOverrides
from app.registry.store import ModelStore
from app.serving import ModelHolder
from app.webhooks.delivery import render_batch
from app.webhooks.sources import names_from
from tests.versions import MODEL, Versions


def test_a_dropped_segment_keeps_its_name_in_the_webhooks(
    versions: Versions, tmp_path: Path
) -> None:
    shutil.copytree(versions.store.root, tmp_path / "store")
    store = ModelStore(tmp_path / "store")
    holder = ModelHolder(store, MODEL, 0.0)
    holder.refresh(True)
    names = names_from(holder)
    old, new = versions.names[versions.old], versions.names[versions.new]
    assert {k: names()[k] for k in old} == old  # the served version names its own

    store.promote(MODEL, versions.new)
    holder.refresh(True)
    dropped = sorted(set(old) - set(new))
    assert dropped, "the two versions share every segment id: nothing to test"
    now = names()
    assert {k: now[k] for k in new} == new  # the served version's names win
    assert {k: now[k] for k in dropped} == {k: old[k] for k in dropped}

    # an edited name of the dropped segment (made while the old version served) is the name
    SegmentOverrides(store.root / MODEL).update(dropped[0], {"name": "Old loyalists"})
    holder.refresh(True)
    assert names()[dropped[0]] == "Old loyalists"

    # what a receiver gets for a customer leaving it
    event = (
        '{"id": "evt_r_exited", "type": "segment.exited", "customer_id": "C1", "model": "",'
        f' "segment": "{dropped[0]}", "from": "{dropped[0]}", "to": "{next(iter(new))}",'
        ' "model_version": "v", "at": 0, "seq": 2, "record_id": "r"}'
    )
    _, body = render_batch([event], lambda model: names())
    [sent] = json.loads(body)["data"]["events"]
    assert sent["segment"] == {"id": dropped[0], "name": "Old loyalists"}
    assert sent["to_segment"]["name"] == new[sent["to_segment"]["id"]]
