"""Reading the compact customer hash and the shard registry (layout in docs/redis-keys.md).

A customer's hash holds small integers and ids only: the model version as an index into the
shard's registry (``v``), the history entries as ``h<seq>`` → ``<at>|<version index>|<from>``
(``at`` in base 36; the ``to`` of an entry is the ``from`` of the next one, or the current
segment), and the profile as positions (``0``, ``1``, …) of a feature-name schema the
registry also indexes (``p``). These functions turn the fields back into the values the
reads return.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.history.records import CustomerState, Migration, Profile
from app.history.values import CHUNK_SEPARATOR, SCHEMA_SEPARATOR, decode_value, split_chunks


class Registry:
    """The indexes of one shard's registry hash, cached (an index never changes meaning).

    ``versions`` maps ``"<index>"`` to a model version, ``schemas`` to feature names."""

    def __init__(self) -> None:
        self.versions: dict[str, str] = {}
        self.schemas: dict[str, tuple[str, ...]] = {}

    def knows(self, fields: Mapping[str, str]) -> bool:
        """True when every index ``fields`` refers to is cached."""
        version, schema = fields.get("v"), fields.get("p", "").partition(":")[0] or None
        history = (e.split("|", 2)[1] for k, e in fields.items() if k.startswith("h"))
        return (
            (version is None or version in self.versions)
            and (schema is None or schema in self.schemas)
            and all(v in self.versions for v in history)
        )

    def update(self, raw: Mapping[str, str]) -> None:
        """Take in a registry hash (``HGETALL``)."""
        for key, value in raw.items():
            if key.startswith("v<"):
                self.versions[key[2:]] = value
            elif key.startswith("f<"):
                self.schemas[key[2:]] = tuple(value.split(SCHEMA_SEPARATOR))


def parse_profile(fields: Mapping[str, str], registry: Registry) -> Profile | None:
    """The profile stored in a customer hash, or None."""
    stored = fields.get("p")
    if stored is None:
        return None
    schema, _, count = stored.partition(":")
    names = registry.schemas.get(schema, ())
    chunks = [fields[str(i)] for i in range(int(count))]
    values = split_chunks(chunks)
    features = {name: decode_value(text) for name, text in zip(names, values, strict=True)}
    return Profile(features, int(fields["u"]), CHUNK_SEPARATOR.join([stored, *chunks]))


def parse_state(customer_id: str, fields: Mapping[str, str], registry: Registry) -> CustomerState:
    """The current state of a customer hash that has a segment (``s``)."""
    seq = int(fields["q"])
    since = int(fields[f"h{seq}"].split("|", 1)[0], 36)
    return CustomerState(
        customer_id=customer_id,
        segment_id=fields["s"],
        segment_name=None,
        model_version=registry.versions.get(fields["v"], ""),
        assigned_at=int(fields["a"]),
        since=since,
        migrations=seq,
        profile=parse_profile(fields, registry),
    )


def parse_history(
    fields: Mapping[str, str], registry: Registry, limit: int, oldest: int
) -> list[Migration]:
    """The customer's migrations newest first, at most ``limit``, none before ``oldest`` ms."""
    if "s" not in fields:
        return []
    to, out = fields["s"], list[Migration]()
    for seq in range(int(fields["q"]), 0, -1):
        entry = fields.get(f"h{seq}")
        if entry is None or len(out) >= limit:
            break
        at, version, origin = entry.split("|", 2)
        when = int(at, 36)
        if when < oldest:
            break
        source = origin or None
        out.append(Migration(source, to, registry.versions.get(version, ""), when, seq))
        to = origin
    return out
