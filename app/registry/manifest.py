"""The manifest written beside every trained artefact (``manifest.json``).

It is the record an analyst, the service and the next training run rely on: what data the
version saw, how it was fitted, how good it is, and what each segment looks like.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.training.csv_format import CsvFormat

if TYPE_CHECKING:
    from app.training.markers import FeatureMarkers

MANIFEST_SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArtefactInfo(_Model):
    file: str = "model.joblib"
    sha256: str
    bytes: int


class DataInfo(_Model):
    path: str
    kind: Literal["table", "transactions"]
    rows: int = Field(description="customers used for training (after RFM derivation)")
    source_rows: int = Field(description="rows read from the file")
    dropped_rows: int = 0
    fingerprint: str = Field(description="SHA-256 of the training frame's content")
    reference_date: str | None = Field(
        None, description="exclusive: features use only events strictly before it"
    )
    day_first: bool | None = Field(
        None,
        description="a log's numeric day/month dates, as the whole column proved them: day "
        "first (true) or month first (false); a log of this model that proves no order is read "
        "so (null: no such dates, or timestamp_format given)",
    )
    dropped_reasons: dict[str, int] = Field(
        default_factory=dict,
        description="why input rows were left out: reason -> rows (a reason is the same text "
        "in every manifest; its example is in dropped_examples)",
    )
    dropped_examples: dict[str, str] = Field(
        default_factory=dict, description="reason -> an example of the rows it left out"
    )
    missing_cells: dict[str, int] = Field(
        default_factory=dict, description="feature -> missing cells (blank ones included), imputed"
    )
    text_as_missing: dict[str, int] = Field(
        default_factory=dict, description='feature -> text cells read as missing (errors="missing")'
    )
    notes: list[str] = Field(default_factory=list)


def dropped_summary(reasons: dict[str, int], examples: dict[str, str], counts: bool = True) -> str:
    """``reason, e.g. example: rows; …``: the rows left out, for a person to read."""
    return "; ".join(
        reason
        + (f", e.g. {examples[reason]}" if reason in examples else "")
        + (f": {rows:,}" if counts else "")
        for reason, rows in reasons.items()
    )


class NumericStats(_Model):
    mean: float
    std: float
    min: float
    median: float
    max: float
    missing_share: float


class FeatureSchema(_Model):
    name: str
    type: Literal["numeric", "categorical"]
    label: str
    transform: str | None = None
    clip: tuple[float | None, float | None] | None = None
    impute: str | None = None
    stats: NumericStats | None = None
    categories: list[str] | None = Field(None, description="known categories (categorical)")
    infrequent: list[str] | None = Field(None, description="grouped as 'infrequent'")
    as_written: bool = Field(
        False,
        description="categories read from a CSV as the text written (3.0 is '3.0'); false: "
        "a version trained before, which read a column of numbers as numbers (3.0 is '3')",
    )


class SelectionPoint(_Model):
    k: int
    silhouette: float
    min_share: float
    admissible: bool
    algorithm: str | None = None
    stability: float | None = Field(
        None, description="lowest ARI of the bootstrap refits (on a sample)"
    )
    effects: dict[str, float] = Field(
        default_factory=dict, description="outcome -> effect size of this candidate's segments"
    )
    separation: float | None = Field(None, description="mean effect relative to the best")
    score: float | None = Field(None, description="what the selection method ranks by")


class Selection(_Model):
    criterion: str
    method: str = "silhouette"
    sample_size: int
    k_min: int
    k_max: int
    min_share: float
    chosen_k: int
    chosen_algorithm: str | None = None
    curve: list[SelectionPoint]
    note: str | None = None
    reason: str | None = Field(None, description="why the chosen candidate won")


class Quality(_Model):
    silhouette: float | None
    davies_bouldin: float | None
    calinski_harabasz: float | None
    stability_ari: float | None = Field(description="mean ARI of bootstrap refits vs the model")
    bootstraps: int
    sample_size: int


class NumericProfile(_Model):
    mean: float
    median: float
    z: float = Field(description="(segment mean - population mean) / population std")
    on_side: float | None = Field(
        None,
        description="share of the segment's customers on the side of the population median "
        "that z points to (above it where z >= 0; a customer at the median counts half): how "
        "much of the segment a name such as 'lapsed' is true of",
    )
    at_median: float | None = Field(
        None,
        description="share of the segment's customers whose value is the population median "
        "itself (many for a count such as the number of lines)",
    )


class CategoryShare(_Model):
    share: float
    population_share: float
    z: float


class SegmentInfo(_Model):
    id: str
    name: str
    kind: Literal["cluster", "rule"]
    rule: str | None = None
    description: str
    action: str | None = None
    size: int
    share: float
    numeric: dict[str, NumericProfile] = Field(default_factory=dict)
    categorical: dict[str, dict[str, CategoryShare]] = Field(default_factory=dict)
    outcomes: dict[str, float | None] = Field(default_factory=dict)
    stability: float | None = Field(None, description="mean bootstrap Jaccard of its members")
    flags: list[str] = Field(default_factory=list)


class OutcomeTest(_Model):
    name: str
    kind: Literal["numeric", "binary"]
    test: str
    statistic: float | None
    p_value: float | None
    significant: bool
    overall_mean: float | None
    positive: str | None = Field(None, description="the value counted as 1 (binary outcomes)")
    effect_size: float | None = Field(
        None, description="Cramér's V (binary) or epsilon² (numeric): 0 none, 1 complete"
    )
    effect_measure: str | None = None
    segment_min: float | None = Field(None, description="lowest segment mean (or rate)")
    segment_max: float | None = Field(None, description="highest segment mean (or rate)")
    missing: int = Field(0, description="customers without a value, left out of the test")


class IdMatching(_Model):
    previous_version: str | None
    reused: dict[str, float] = Field(
        default_factory=dict, description="reused id -> Jaccard overlap with the old segment"
    )
    new: list[str] = Field(default_factory=list)


class FeatureReference(_Model):
    """A feature's training distribution, the baseline of drift (PSI).

    Numeric: ``edges`` are the inner bin edges (training deciles, duplicates dropped); bin
    ``i`` holds values ``edges[i-1] < x <= edges[i]``, with open ends, and a last bin holds
    missing values. Categorical: one bin per known category, then ``other``, then missing.
    ``shares`` has one entry per bin and sums to 1.
    """

    name: str
    type: Literal["numeric", "categorical"]
    edges: list[float] | None = None
    categories: list[str] | None = None
    shares: list[float]


class DriftReference(_Model):
    bins: int = Field(description="bins asked for per numeric feature (before duplicates)")
    rows: int
    features: list[FeatureReference]
    segment_shares: dict[str, float] = Field(description="segment id -> training share")


class ConvergencePair(_Model):
    """Two segments that became indistinct (``segments`` sorted)."""

    segments: tuple[str, str]
    distance: float = Field(description="RMS of the standardised profile differences")
    reasons: list[str] = Field(description="close_centres and/or same_outcomes")


class RefreshCheck(_Model):
    name: str
    passed: bool
    detail: str


class RefreshDecision(_Model):
    """What ``segments refresh`` decided about this (candidate) version, and why."""

    decided_at: datetime
    compared_with: str | None
    promoted: bool
    checks: list[RefreshCheck] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


class Manifest(_Model):
    schema_version: int = MANIFEST_SCHEMA_VERSION
    model_name: str
    version: str
    created_at: datetime
    artefact: ArtefactInfo
    libraries: dict[str, str]
    data: DataInfo
    config: dict[str, Any]
    features: list[FeatureSchema]
    algorithm: str
    seed: int
    k: int
    selection: Selection
    quality: Quality
    segments: list[SegmentInfo]
    outcomes: list[OutcomeTest] = Field(default_factory=list)
    id_matching: IdMatching
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per step")
    drift_reference: DriftReference | None = Field(
        None, description="training distributions (absent in versions trained before drift)"
    )
    convergence: list[ConvergencePair] = Field(default_factory=list)
    refresh: RefreshDecision | None = None

    @property
    def csv_format(self) -> CsvFormat:
        """How the training config said its CSV writes text, fields and numbers (``[data]
        encoding``, ``delimiter``, ``decimal``, ``thousands``; UTF-8 for a version trained
        before ``encoding``): file tagging and comparisons read so too."""
        return CsvFormat.of(self.config.get("data", {}))

    @property
    def missing_values(self) -> list[str]:
        """The cells the training config read as missing besides blanks (``[data]
        missing_values``): file tagging and comparisons read them so too."""
        return list(self.config.get("data", {}).get("missing_values", []))

    @property
    def feature_markers(self) -> dict[str, FeatureMarkers]:
        """Feature -> its own missing markers (``[[features]] missing_values``: a sentinel
        such as ``pdays = -1``; and the ``[data] missing_values`` that are numbers, a
        request's 999 missing as the cell ``999`` is): file tagging, recording, drift,
        comparisons and the API read them so too (none in a version trained before the
        option)."""
        from app.training.markers import markers_of

        return markers_of(self.config.get("features", []), self.missing_values)

    @property
    def boolean_features(self) -> frozenset[str]:
        """The categorical features whose learnt categories are true and false (a file's
        TRUE/FALSE column): a file's ``TRUE`` cell and a request's ``"TRUE"`` are the
        boolean there, whatever else a chunk of the file holds."""
        from app.training.preprocess import MISSING_CATEGORY

        found = set()
        for f in self.features:
            if f.type != "categorical" or f.categories is None:
                continue
            known = {*f.categories, *(f.infrequent or [])} - {MISSING_CATEGORY}
            if known and known <= {"true", "false"}:
                found.add(f.name)
        return frozenset(found)

    @property
    def numbered_categories(self) -> frozenset[str]:
        """The categorical features this version read from its CSV as numbers where every
        cell was one (``typed_categories``' ``numbered``): those of a version trained before
        categories were read as written; file readers type them so for it."""
        return frozenset(
            f.name for f in self.features if f.type == "categorical" and not f.as_written
        )

    @property
    def junk_as_missing(self) -> frozenset[str]:
        """The numeric features whose text the training config read as missing (``errors =
        "missing"``): file tagging, recording and comparisons read them so too."""
        features = self.config.get("features", [])
        return frozenset(f["name"] for f in features if f.get("errors") == "missing")

    def segment(self, segment_id: str) -> SegmentInfo | None:
        return next((s for s in self.segments if s.id == segment_id), None)
