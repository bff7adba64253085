"""Which models and segment ids a subscription's filters may name.

A filter that names nothing that exists would match no event, silently; so a subscription is
refused (422) when its ``models`` or ``segments`` name something unknown:

- a model is known when the model store holds a version of it, or the service serves it
  (the default model, ``SEGMENTS_MODEL_NAME``, even before its first version);
- a segment id is known when some stored version (promoted or not, old ones included: a
  rollback serves them again) of the filtered models has it, or of any model when there is
  no model filter. Ids are a model's own: without a model filter, an id that several models
  have is refused too (each model's segment of that id would match: name the models), and
  the filter keeps the model that has its ids (a model trained later numbers its segments
  from seg-001 too); ids of different models are refused as well (each kept model would
  match every listed id, its own segment of the other model's id once it has one). Ids are
  stable across retrains and a new group of customers gets a new id numbered above every id
  ever used (``app.training.stable_ids``), so an id of a version not yet trained cannot be
  known beforehand; subscribe to it once that version is trained.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from app.errors import StoreError
from app.problems import Problem, shown
from app.registry.store import ModelStore

log = logging.getLogger(__name__)
LISTED = 10  # names listed per kind in the answer (then "and N more")


def listed(names: Iterable[str], limit: int = LISTED) -> str:
    """At most ``limit`` of ``names``, quoted and clipped, then how many more; "none"."""
    items = list(names)
    text = ", ".join(repr(shown(n)) for n in items[:limit]) or "none"
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


def known_segments(store: ModelStore, models: Iterable[str]) -> set[str]:
    """The segment ids of every readable stored version of ``models``."""
    return set().union(*segments_of(store, models).values())


def segments_of(store: ModelStore, models: Iterable[str]) -> dict[str, set[str]]:
    """Each of ``models`` with the segment ids of its readable stored versions."""
    found: dict[str, set[str]] = {}
    for model in models:
        ids = found[model] = set()
        for version in store.versions(model):
            try:
                ids.update(s.id for s in store.manifest(model, version).segments)
            except StoreError as exc:  # a corrupt version: the others still count
                log.warning("cannot read %s %s to check a webhook filter: %s", model, version, exc)
    return found


def check_filters(
    store: ModelStore, served: Iterable[str], models: list[str] | None, segments: list[str] | None
) -> list[str] | None:
    """Raise a 422 ``Problem`` naming the unknown models and segment ids of a subscription's
    filters, with the known ones (bounded); reads the store, so call it off the event loop.

    The models to keep: ``models``, or for ``segments`` without them the one model that has
    those ids now (ids of several models are refused). A segment id is a model's own, and
    every model numbers its segments from seg-001: without the model pinned, a model trained
    later (or one served beside) sent its own segments of those ids under the same ids."""
    names = set(store.model_names()) | set(served)
    errors: list[dict[str, str]] = []
    pinned = models
    filtered = names if models is None else [m for m in models if m in names]
    unknown_models = [] if models is None else [m for m in models if m not in names]
    if unknown_models:
        errors.append(
            {
                "field": "models",
                "message": f"unknown model(s) {listed(unknown_models)}; "
                f"known: {listed(sorted(names))}",
            }
        )
    if segments and filtered:  # when every filtered model is unknown, that is the error
        of_model = segments_of(store, sorted(filtered))
        ids = set().union(*of_model.values())
        unknown = [s for s in dict.fromkeys(segments) if s not in ids]
        # ids are a model's own (two models' seg-001 are two segments): without a model
        # filter, an id that several models have took each model's segment of that id
        shared = [s for s in dict.fromkeys(segments) if sum(s in i for i in of_model.values()) > 1]
        if shared and not unknown and models is None:
            having = sorted(m for m, i in of_model.items() if i.intersection(shared))
            errors.append(
                {
                    "field": "segments",
                    "message": f"segment id(s) {listed(shared)} of several models "
                    f"({listed(having)}), each model's own segment: name the model(s) in "
                    "'models'",
                }
            )
        if models is None:
            pinned = sorted(m for m, i in of_model.items() if i.intersection(segments))
            # each pinned model matches every listed id: ids spread over several models
            # would take one model's segment of another's id once a retrain gives it one
            if len(pinned) > 1 and not shared and not unknown:
                errors.append(
                    {
                        "field": "segments",
                        "message": f"segment id(s) {listed(dict.fromkeys(segments))} are of "
                        f"different models ({listed(pinned)}), each model's own: name the "
                        "model(s) in 'models'",
                    }
                )
        if unknown:
            of = "any stored model" if models is None else f"model(s) {listed(sorted(filtered))}"
            errors.append(
                {
                    "field": "segments",
                    "message": f"unknown segment id(s) {listed(unknown)}: no stored version of "
                    f"{of} has them; known: {listed(sorted(ids))}",
                }
            )
    if errors:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Problem(
            422, "Invalid request", detail, type_="/problems/invalid-request", errors=errors
        )
    return pinned
