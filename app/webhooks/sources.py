"""Where the dispatcher's events come from: each served model's change streams, and the
names of its segments now (events are rendered with them when sent).

``SubscriptionStore`` takes either a plain list of streams (one unnamed source: tests,
tools) or a ``Sources`` callable, asked again whenever the dispatcher looks for work, so a
model the service starts serving later is delivered too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.history import HistoryConfig, Keys
from app.models import Models, model_config

Names = Callable[[], Mapping[str, str]]


@dataclass(frozen=True)
class Source:
    model: str  # the model's name ("" for an unnamed source); events carry it
    streams: tuple[str, ...]
    names: Names | None = None  # None: the dispatcher's own


Sources = Callable[[], list[Source]]


def fixed(streams: list[str], model: str = "", names: Names | None = None) -> Sources:
    source = Source(model, tuple(streams), names)
    return lambda: [source]


def names_from(holder: Any) -> Names:
    """Segment names as the serving version has them now (edited names included), and for a
    segment it lacks, as the newest earlier version named it (``ModelHolder.former_names``):
    after a promotion, the customers a rescore moves out of a segment the new version dropped
    leave it by name, not ``null``."""
    cache: dict[str, Any] = {"for": None, "names": {}}

    def names() -> Mapping[str, str]:
        current = holder.current
        if current is not cache["for"]:
            segments = current.segments if current is not None else {}
            former = holder.former_names() if current is not None else {}
            cache["for"] = current
            cache["names"] = former | {k: s.name for k, s in segments.items()}
        result: Mapping[str, str] = cache["names"]
        return result

    return names


def model_sources(models: Models, config: HistoryConfig) -> Sources:
    """Every model ``models`` serves now: the default one under the service's keys, the
    others under theirs (``app.models.model_config``)."""
    names: dict[str, Names] = {}

    def sources() -> list[Source]:
        found = []  # the default model first: events queued before models were named are its
        for name in sorted(models.names, key=lambda n: n != models.default):
            own = config if name == models.default else model_config(config, name)
            if name not in names:
                names[name] = names_from(models.holder(name))
            streams = tuple(Keys.from_config(own).all_events())
            found.append(Source(name, streams, names[name]))
        return found

    return sources
