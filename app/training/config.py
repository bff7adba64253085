"""The training configuration: a TOML file, validated strictly (unknown keys are errors).

See ``examples/customers.toml`` for a commented example. Relative data paths are resolved
against the config file's folder, so a config and its data can move together.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.errors import ConfigError
from app.registry.store import model_name_problem
from app.training.csv_format import encoding_problem
from app.words import nearest_key

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# scikit-learn's random_state and numpy's generators take a seed in 0 .. 2**32 - 1 (a negative
# or larger one was their traceback at the first fit)
SEED_MAX = 2**32 - 1


def ahead_of_today(name: str, day: date) -> str | None:
    """``"<name> <day> is more than a day ahead of today (<today> UTC)"`` for a day the log's
    features cannot be derived as of (every customer lapsed, events late), else None: one
    bound for training's ``reference_date``, ``assign --as-of`` and ``drift --reference-date``."""
    today = datetime.now(UTC).date()
    if day <= today + timedelta(days=1):
        return None
    return f"{name} {day.isoformat()} is more than a day ahead of today ({today.isoformat()} UTC)"


STORED = "stored"  # validation context: a stored version's config, read again


def _stored(info: ValidationInfo) -> bool:
    """Whether a stored version's config is being read again (drift, diff, events): a refusal added
    after versions were trained with what it refuses must not make those versions unreadable;
    it guards new configs only."""
    return isinstance(info.context, dict) and bool(info.context.get(STORED))


def _admits(annotation: Any, kinds: tuple[type, ...]) -> bool:
    """Whether a field's type admits a value of one of ``kinds`` (``int | None`` admits
    ``int``), its unions and parameters searched."""
    return annotation in kinds or any(_admits(a, kinds) for a in get_args(annotation))


def _twice(items: Sequence[str]) -> list[str]:
    """The items listed more than once, sorted (each once)."""
    return sorted({item for item in items if items.count(item) > 1})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """``k_max = true`` was read as 1 (and ``seed = false`` as 0): pydantic takes a
        bool for a number; a config means a number there."""
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if _admits(annotation, (int, float)) and not _admits(annotation, (bool,)):
                raise ValueError(f"expected a number, not {str(value).lower()}")
        return value


REFUND_VALUES = ("refund", "refunded", "return", "returned")
# an order never fulfilled (a marketplace's "unavailable"), a payment refused
EXCLUDE_VALUES = (
    "cancelled",
    "canceled",
    "void",
    "voided",
    "failed",
    "unavailable",
    "declined",
    "rejected",
)


class TransactionsConfig(_Strict):
    """How to read a transaction log and derive RFM features from it."""

    customer: str = Field(description="column holding the customer id")
    timestamp: str = Field(description="column holding the transaction time")
    amount: str | None = Field(None, description="column holding the amount")
    quantity: str | None = Field(None, description="with unit_price: amount = quantity x price")
    unit_price: str | None = None
    order: str | None = Field(None, description="order/invoice column; frequency counts orders")
    reference_date: date | None = Field(
        None,
        description="'as of' date for recency/tenure, exclusive: only events strictly before "
        "it are features (to include 30 September, write 1997-10-01); default: the day after "
        "the last event",
    )
    timestamp_format: str | None = None
    refund_column: str | None = Field(
        None,
        description="column saying which lines are refunds (their amount counts negative, "
        "whatever its sign); without it a refund is a line of negative amount",
    )
    refund_values: list[str] = Field(
        default_factory=lambda: list(REFUND_VALUES),
        min_length=1,
        description="the refund_column values of a refund (trimmed, any case)",
    )
    exclude_column: str | None = Field(
        None,
        description="column saying which lines are no sale at all (an order status: "
        "cancelled, failed); those lines are left out and counted",
    )
    exclude_values: list[str] = Field(
        default_factory=lambda: list(EXCLUDE_VALUES),
        min_length=1,
        description="the exclude_column values of a line left out (trimmed, any case)",
    )

    @field_validator("reference_date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        # ("09/01/2024" got pydantic's "invalid character in year": which day was meant is
        # the reader's guess; the config names one way to write it)
        if isinstance(value, str) and not re.match(r"\s*\d{4}-", value):
            raise ValueError(
                f"reference_date {value[:40]!r} is not a date written year first: write it as "
                f"a TOML date, reference_date = {_year_first(value)} (no quotes needed)"
            )
        return value

    @field_validator("reference_date")
    @classmethod
    def _not_to_come(cls, value: date | None, info: ValidationInfo) -> date | None:
        # (2999-01-01 trained every customer as lapsed for 355,000 days, and the service,
        # which derives as of now, then assigned nobody as training did: assign --as-of and
        # drift --reference-date refuse such a day too)
        if _stored(info) or value is None:
            return value
        if ahead := ahead_of_today("reference_date", value):
            raise ValueError(
                f"{ahead}: features are derived as of a day past, the day after the log's "
                "last event by default (leave it out for that)"
            )
        return value

    @model_validator(mode="after")
    def _amount_source(self) -> TransactionsConfig:
        has_amount = self.amount is not None
        has_product = self.quantity is not None and self.unit_price is not None
        if has_amount == has_product:
            raise ValueError("give either 'amount' or both 'quantity' and 'unit_price'")
        return self


def _year_first(value: str) -> str:
    """``value`` (``01.07.2024``, ``7/15/2024``) written year first, each way it may be read
    (``2024-07-01 if day first, or 2024-01-07 if month first``); ``2024-09-01``, an example,
    where it is no such date."""
    found = re.fullmatch(r"\s*(\d{1,2})[./-](\d{1,2})[./-](\d{4})\s*", value)
    if not found:
        return "2024-09-01"
    a, b, year = (int(g) for g in found.groups())
    readings = []
    for day, month, way in ((a, b, "day first"), (b, a, "month first")):
        try:
            readings.append((date(year, month, day).isoformat(), way))
        except ValueError:
            continue
    if not readings:
        return "2024-09-01"
    if len(readings) == 1 or readings[0][0] == readings[1][0]:
        return readings[0][0]
    return ", or ".join(f"{iso} if {way}" for iso, way in readings)


def _known_encoding(value: str | None) -> str | None:
    if value is not None and (problem := encoding_problem(value)):
        raise ValueError(problem)
    return value


class DataConfig(_Strict):
    path: Path
    kind: Literal["table", "transactions"] = "table"
    id_column: str = "customer_id"
    transactions: TransactionsConfig | None = None
    missing_values: list[str] = Field(
        default_factory=list,
        description="more cell values read as missing (blank and whitespace-only cells, and "
        "in a numeric column pandas' usual markers such as NA, already are; in a categorical one "
        "NA is a category unless listed here); one that is a number is missing as a "
        'number too in a feature: "999" matches 999.0, and a request\'s 999',
    )
    drop_duplicates: bool = Field(
        False,
        description="a transaction log's lines repeated exactly (every field) count once; "
        "default: each counts (the same item bought twice), and the summary says how many",
    )

    delimiter: Literal[",", ";", "\t", "|"] = Field(
        ",",
        description='the CSV file\'s field separator: "," (the default), ";" (a spreadsheet\'s '
        'export where the comma is the decimal mark), "\\t" or "|"',
    )
    decimal: Literal[".", ","] = Field(
        ".", description='the CSV file\'s decimal mark: "." (the default) or "," (12,5)'
    )
    thousands: Literal[".", ",", " ", "'"] | None = Field(
        None,
        description="the CSV file's thousands separator, when its numbers are grouped "
        '(1.234,56: thousands = "."); default none: a grouped number is refused',
    )
    encoding: str = Field(
        "utf-8",
        description='the CSV file\'s text encoding: "utf-8" (the default; a byte-order mark is '
        'skipped), or e.g. "cp1252" / "latin-1" for a file saved on Windows (Excel\'s "CSV")',
    )

    duplicate_ids: Literal["error", "last"] = Field(
        "error",
        description='a customer table\'s id on several rows: "error" (the default: the '
        'message counts them and names rows) or "last" (each id\'s last row is used, as '
        "`segments assign` uses it; the earlier rows are left out and counted)",
    )

    _encoding = field_validator("encoding")(_known_encoding)

    @model_validator(mode="after")
    def _kind_matches(self, info: ValidationInfo) -> DataConfig:
        if self.kind == "transactions" and self.transactions is None:
            raise ValueError("kind = 'transactions' needs a [data.transactions] table")
        if self.kind == "table" and self.transactions is not None:
            raise ValueError("[data.transactions] is only valid with kind = 'transactions'")
        if self.kind == "table" and self.drop_duplicates:
            raise ValueError(
                "drop_duplicates is only valid with kind = 'transactions' (a table's repeated "
                "customer id is an error already)"
            )
        _check_format(self.delimiter, self.decimal, self.thousands)
        if self.kind == "transactions" and self.duplicate_ids != "error":
            raise ValueError(
                "duplicate_ids is only valid with kind = 'table' (a log's customer has many "
                "lines by design)"
            )
        tx = self.transactions
        if (
            tx is not None
            and self.kind == "transactions"
            and "id_column" in self.model_fields_set
            and self.id_column != tx.customer
            and not _stored(info)  # (versions trained with one stay readable)
        ):
            # (a log's id_column naming another column was read by nothing, without a word)
            raise ValueError(
                f"id_column = {self.id_column!r} is not read for a transaction log: its "
                f"customers are [data.transactions] customer = {tx.customer!r}; leave "
                f"id_column out, or set customer = {self.id_column!r} if that is the column "
                "of customer ids"
            )
        return self


MARKERS_HINT = (
    "missing_values lists the cells read as missing in this column, each a string as "
    'written in the file, e.g. missing_values = ["-1"] (not [-1])'
)


def _marker_list(value: Any) -> Any:
    """A feature's ``missing_values``: a list of strings, as ``[data] missing_values`` is;
    anything else (``[-1]``, a bare ``"-1"``) is refused with the form to write."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{MARKERS_HINT}; got {value!r}")
    return value


def _not_blank(value: str | None, info: ValidationInfo) -> str | None:
    """A feature's words given as only spaces (``label = ""`` was ignored without a word):
    refused, so leaving the key out is the way to say none."""
    if value is not None and not value.strip() and not _stored(info):
        raise ValueError("is blank: write the words, or leave the key out")
    return value


class NumericFeature(_Strict):
    name: str
    type: Literal["numeric"] = "numeric"
    transform: Literal["auto", "none", "log1p"] = Field(
        "auto",
        description="auto: log1p where the training data are heavily right-skewed and (almost) "
        "never negative, else none; resolved at training, the version keeps which",
    )
    clip: tuple[float | None, float | None] | None = Field(
        None, description="absolute [lower, upper] bounds applied before the transform"
    )
    winsorize: tuple[float, float] | None = Field(
        None, description="quantile bounds learned at fit, e.g. [0.01, 0.99]"
    )
    impute: Literal["median", "mean", "zero"] = "median"
    errors: Literal["raise", "missing"] = Field(
        "raise", description="text that is not a number: an error, or a missing value"
    )
    missing_values: list[str] = Field(
        default_factory=list,
        description="this column's own missing markers (a sentinel such as pdays = -1), "
        'compared as numbers too ("-1" matches -1.0); [data] missing_values apply to every column',
    )
    label: str | None = Field(None, description="human label used in generated names")
    high: str | None = Field(None, description="word for high values in names, e.g. 'lapsed'")
    low: str | None = Field(None, description="word for low values in names, e.g. 'recent'")

    _markers = field_validator("missing_values", mode="before")(_marker_list)
    _words = field_validator("label", "high", "low")(_not_blank)

    @field_validator("winsorize")
    @classmethod
    def _quantiles(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (0.0 <= v[0] < v[1] <= 1.0):
            raise ValueError("winsorize quantiles must satisfy 0 <= lower < upper <= 1")
        return v

    @field_validator("clip")
    @classmethod
    def _bounds(
        cls, v: tuple[float | None, float | None] | None
    ) -> tuple[float | None, float | None] | None:
        if v is None:
            return v
        lo, hi = v
        for b in (lo, hi):
            if b is not None and not math.isfinite(b):
                raise ValueError("clip bounds must be finite numbers or null")
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError("clip lower bound must be below the upper bound")
        return v


class CategoricalFeature(_Strict):
    name: str
    type: Literal["categorical"]
    min_frequency: float = Field(
        0.01, ge=0.0, lt=1.0, description="rarer categories are grouped as 'infrequent'"
    )
    label: str | None = None
    missing_values: list[str] = Field(
        default_factory=list,
        description="this column's own missing markers, compared as the category's text; "
        "[data] missing_values apply to every column",
    )

    _markers = field_validator("missing_values", mode="before")(_marker_list)
    _words = field_validator("label")(_not_blank)

    @field_validator("min_frequency", mode="before")
    @classmethod
    def _a_share(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 1:
            raise ValueError(
                f"min_frequency is a share of the customers (0.01: 1%), not a count: "
                f"{value} customers of 10,000 would be {value / 10_000:g}"
            )
        return value


def _feature_type(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "numeric"))
    return str(getattr(value, "type", "numeric"))


Feature = Annotated[
    Annotated[NumericFeature, Tag("numeric")] | Annotated[CategoricalFeature, Tag("categorical")],
    Discriminator(_feature_type),
]


class RuleConfig(_Strict):
    name: str = Field(min_length=1, max_length=80)
    when: str = Field(
        min_length=1, description="condition, e.g. tenure_days < 30 and plan == 'free'"
    )
    description: str | None = None
    action: str | None = None

    @field_validator("name")
    @classmethod
    def _named(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip() and not _stored(info):  # (served a segment with no name)
            raise ValueError("is blank: a rule segment's name is what the service serves")
        return value


MAX_LEAVES = 8  # the most leaves a tree grows (its rules stay few enough to read)


class ModelConfig(_Strict):
    name: str = Field("customers", pattern=NAME_PATTERN)
    algorithm: Literal["kmeans", "gmm", "minibatch_kmeans", "auto", "tree"] = "kmeans"
    target: str | None = Field(
        None,
        description="with algorithm = 'tree', or 'tree' in algorithms: the declared outcome "
        "the tree splits on (in algorithms, default: the first declared outcome)",
    )
    algorithms: list[Literal["kmeans", "gmm", "minibatch_kmeans", "tree"]] | None = Field(
        None,
        description="candidate algorithms the selection compares; default: [algorithm]; "
        "'tree' (with outcomes) adds a tree on target, judged on its held-out effect",
    )
    selection: Literal["silhouette", "outcome", "balanced"] | None = Field(
        None,
        description="how the candidate is chosen; default: balanced with outcomes, else silhouette",
    )
    selection_bootstraps: int = Field(
        3, ge=0, le=20, description="refits per candidate to measure its stability"
    )
    k_min: int = Field(3, ge=2, le=50)
    k_max: int = Field(8, ge=2, le=50)
    min_share: float = Field(0.05, ge=0.0, lt=0.5)
    seed: int = Field(
        42, ge=0, le=SEED_MAX, description="fixes every random draw (numpy and scikit-learn)"
    )
    selection_sample: int = Field(20_000, ge=500, description="rows used to choose k")
    silhouette_sample: int = Field(5_000, ge=200)
    stability_bootstraps: int = Field(5, ge=0, le=50)
    minibatch_threshold: int = Field(
        500_000, ge=1, description="with algorithm = 'auto', use mini-batch k-means above this"
    )

    @field_validator("min_share", mode="before")
    @classmethod
    def _a_fraction(cls, value: Any) -> Any:
        # (a new user's min_share = 5, meant as 5%, got "Input should be less than 0.5")
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 1:
            raise ValueError(
                f"min_share is a share of the customers (0.05: 5%), not a percent or a count: "
                f"for {value:g}%, write min_share = {value / 100:g}"
                + (" (at most 0.5)" if value >= 50 else "")
            )
        return value

    @field_validator("algorithms", mode="before")
    @classmethod
    def _clustering_only(cls, value: Any) -> Any:
        # (a tree alone is algorithm = "tree": a comparison of one candidate kind said
        # nothing the tree's own choice does not)
        if isinstance(value, list) and value and all(a == "tree" for a in value):
            raise ValueError(
                'algorithms = ["tree"] compares the tree with nothing: write algorithm = '
                '"tree" with target = "<outcome>" for a tree alone, or list a clustering '
                'algorithm beside it (algorithms = ["kmeans", "tree"])'
            )
        if isinstance(value, list) and "auto" in value:
            raise ValueError(
                "'auto' is not a candidate: it picks kmeans, or minibatch_kmeans above "
                'minibatch_threshold rows; list "kmeans", "gmm" or "minibatch_kmeans"'
            )
        return value

    @model_validator(mode="after")
    def _k_range(self, info: ValidationInfo) -> ModelConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) must not exceed k_max ({self.k_max})")
        if self.algorithm == "tree" and not self.target:
            raise ValueError("algorithm = 'tree' needs target = '<outcome>' (a declared outcome)")
        if self.target is not None and self.algorithm != "tree" and not self.compares_tree:
            raise ValueError("target is only used with algorithm = 'tree' or 'tree' in algorithms")
        if _stored(info):  # the refusals below came after versions were trained with them
            return self
        # (algorithms = [] trained the default silently; beside a tree, the list was ignored)
        if self.algorithms is not None and not self.algorithms:
            raise ValueError(
                "algorithms is empty: list the candidates to compare, e.g. "
                'algorithms = ["kmeans", "gmm"], or leave it out for just algorithm'
            )
        if self.algorithms and self.algorithm == "tree":
            raise ValueError(
                "algorithms lists the candidates to compare, and algorithm = 'tree' grows a "
                "tree alone: leave algorithms out, or compare the tree with clusters by "
                'algorithms = ["kmeans", "tree"] (without algorithm = "tree")'
            )
        if (self.algorithm == "tree" or self.compares_tree) and self.k_min > MAX_LEAVES:
            # (the training ended in "max() arg is an empty sequence" after reading the data)
            raise ValueError(
                f"a tree grows at most {MAX_LEAVES} leaves, and k_min = {self.k_min} asks for "
                f"more segments: lower k_min to {MAX_LEAVES} or less"
                + (", or leave 'tree' out of algorithms" if self.compares_tree else "")
            )
        if self.compares_tree and self.selection == "silhouette":
            raise ValueError(
                "'tree' in algorithms is judged by its held-out effect on its target, and "
                "selection = 'silhouette' never looks at an outcome: use selection = "
                "'balanced' (the default with outcomes) or 'outcome', or leave 'tree' out"
            )
        if self.algorithms and (twice := _twice(self.algorithms)):
            raise ValueError(f"algorithms lists {', '.join(map(repr, twice))} twice")
        return self

    @property
    def compares_tree(self) -> bool:
        """Whether a tree on ``target`` is one of the selection's candidates."""
        return bool(self.algorithms) and "tree" in (self.algorithms or [])


class FutureOutcomes(_Strict):
    """Outcomes measured from the same transaction log after the reference date."""

    days: int = Field(ge=1, le=3660, description="window after the reference date, in days")


class OutcomesConfig(_Strict):
    """Outcome columns: of the training data, of a table joined on the customer id, and/or
    measured from the transaction log after the reference date (``future``)."""

    columns: list[str] = Field(
        default_factory=list, description="outcome columns; with a path, default: all of them"
    )
    path: Path | None = Field(None, description="a CSV/Parquet table of outcomes per customer")
    id: str = Field("customer_id", description="the outcomes table's customer id column")
    positive: dict[str, str] = Field(
        default_factory=dict,
        description="the value counted as 1 of an outcome written as two words, e.g. "
        '{churn = "Churned"} (Yes/No, true/false and Y/N need none)',
    )
    future: FutureOutcomes | None = None

    # the table's CSV format, each as [data]'s unless given (the same export, most often)
    delimiter: Literal[",", ";", "\t", "|"] | None = Field(
        None, description="the outcomes CSV's field separator; default: [data] delimiter"
    )
    decimal: Literal[".", ","] | None = Field(
        None, description="the outcomes CSV's decimal mark; default: [data] decimal"
    )
    thousands: Literal[".", ",", " ", "'"] | None = Field(
        None, description="the outcomes CSV's thousands separator; default: [data] thousands"
    )
    encoding: str | None = Field(
        None, description="the outcomes CSV's text encoding; default: [data] encoding"
    )

    _encoding = field_validator("encoding")(_known_encoding)

    def csv_format(self, data: DataConfig) -> tuple[str, str, str | None, str]:
        """The outcomes table's delimiter, decimal mark, thousands separator and encoding: its
        own where given, else those of ``data`` (``thousands`` given as none is none). ``data``'s
        thousands separator goes with its decimal mark: a table declaring another (a plain
        ``decimal = "."`` beside a ``1.234,56`` export) has none unless it sets one, which
        TOML, having no null, could not say."""
        given = self.model_fields_set
        decimal = self.decimal or data.decimal
        inherited = data.thousands if decimal == data.decimal else None
        return (
            self.delimiter or data.delimiter,
            decimal,
            self.thousands if "thousands" in given else inherited,
            self.encoding or data.encoding,
        )

    @model_validator(mode="after")
    def _positive_of_an_outcome(self) -> OutcomesConfig:
        unknown = sorted(set(self.positive) - set(self.columns))
        if unknown and (self.columns or self.path is None):
            listed = ", ".join(map(repr, self.columns)) or "none"
            raise ValueError(
                f"positive names {', '.join(map(repr, unknown))}, not an outcome column "
                f"(columns: {listed})"
            )
        blank = sorted(k for k, v in self.positive.items() if not v.strip())
        if blank:
            raise ValueError(f"positive of {', '.join(map(repr, blank))} is blank")
        return self


def _check_format(delimiter: str, decimal: str, thousands: str | None, table: str = "") -> None:
    """A CSV format whose separators differ (``table``: where the value that clashes is
    inherited, ``[outcomes] `` naming its own)."""
    if decimal == delimiter:
        raise ValueError(
            f"{table}decimal = {decimal!r} is the delimiter too: a file whose decimal mark is "
            'the comma separates its fields with another, e.g. delimiter = ";"'
        )
    if thousands is not None and thousands in (decimal, delimiter):
        what = "decimal mark" if thousands == decimal else "delimiter"
        # a comma-separated file of quoted "4,512" (a CRM's or a US spreadsheet's export):
        # the fix is in the file, which the other advice (another separator) did not say
        quoted = (
            ': a comma-separated file with numbers written "4,512" (in quotes) is not read '
            "so: write plain numbers (4512) in the file (the pandas lines that do it: "
            "docs/training.md#preparing-a-file); a spreadsheet's export of 1.234,56 has "
            'another delimiter, delimiter = ";", decimal = ",", thousands = "."'
        )
        raise ValueError(
            f"{table}thousands = {thousands!r} is the {what} too"
            + (
                quoted
                if thousands == delimiter == ","
                else ": the thousands separator is another character (1.234,56: "
                'decimal = ",", thousands = ".")'
            )
        )


def _outcomes_from_list(value: Any) -> Any:
    """``outcomes = ["a", "b"]`` (the short form) is ``[outcomes] columns = ["a", "b"]``."""
    return {"columns": value} if isinstance(value, list) else value


class TrainConfig(_Strict):
    data: DataConfig
    features: list[Feature] = Field(min_length=1)
    outcomes: OutcomesConfig = Field(default_factory=OutcomesConfig)
    rules: list[RuleConfig] = Field(default_factory=list)
    model: ModelConfig = Field(default_factory=ModelConfig)

    @model_validator(mode="after")
    def _unique_names(self) -> TrainConfig:
        names = [f.name for f in self.features]
        if dupes := _twice(names):
            raise ValueError(f"features declared twice: {', '.join(dupes)}")
        if self.data.id_column in names:
            raise ValueError(f"id column {self.data.id_column!r} cannot also be a feature")
        if self.outcomes.path is None and self.data.id_column in self.outcomes.columns:
            # (it was "outcome 'guest_id' is not a column of hotel.csv": it is, the id one)
            raise ValueError(
                f"id column {self.data.id_column!r} cannot also be an outcome: an outcome is a "
                "number or yes/no of each customer"
            )
        if self.outcomes.path is not None:
            _check_format(*self.outcomes.csv_format(self.data)[:3], table="[outcomes] ")
        # (outcomes declared twice were an IndexError traceback in the outcome weights)
        if twice := _twice(self.outcomes.columns):
            raise ValueError(f"outcome columns declared twice: {', '.join(twice)}")
        clash = sorted(set(self.outcomes.columns) & set(names))
        if clash:
            raise ValueError(f"outcome columns cannot also be features: {', '.join(clash)}")
        rule_names = [r.name for r in self.rules]
        if len(set(rule_names)) != len(rule_names):
            raise ValueError("rule names must be unique")
        if self.outcomes.future is not None and self.data.kind != "transactions":
            raise ValueError("[outcomes.future] needs kind = 'transactions' in [data]")
        outcomes = self.outcomes
        declared = outcomes.columns or outcomes.path is not None or outcomes.future is not None
        if self.model.compares_tree and not declared:
            raise ValueError(
                "[model] algorithms lists 'tree', a tree grown on an outcome, and none is "
                'declared: list them at the top level (outcomes = ["Churn"]), or '
                "[outcomes.future] for a transaction log; or leave 'tree' out"
            )
        if self.model.selection in ("outcome", "balanced") and not declared:
            raise ValueError(
                f"[model] selection = {self.model.selection!r} chooses by the outcomes, and "
                'none is declared: list them at the top level (outcomes = ["Churn"]), or '
                "[outcomes.future] for a transaction log; without outcomes the choice is by "
                "silhouette"
            )
        return self

    @field_validator("outcomes", mode="before")
    @classmethod
    def _short_outcomes(cls, value: Any) -> Any:
        return _outcomes_from_list(value)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


def _tables() -> dict[str, list[str]]:
    """Each config key -> where it belongs (``the top level`` or ``[table]``s)."""
    owners: dict[str, list[str]] = {}
    for table, model in (
        ("[data.transactions]", TransactionsConfig),
        ("[data]", DataConfig),
        ("[outcomes]", OutcomesConfig),
        ("[outcomes.future]", FutureOutcomes),
        ("[[features]]", NumericFeature),
        ("[[features]]", CategoricalFeature),
        ("[[rules]]", RuleConfig),
        ("[model]", ModelConfig),
        ("the top level", TrainConfig),
    ):
        for key in model.model_fields:
            homes = owners.setdefault(key, [])
            if table not in homes:
                homes.append(table)
    return owners


def _where_it_belongs(loc: tuple[int | str, ...]) -> str:
    """A key TOML put in the wrong table (``outcomes = [...]`` written after ``[model]``
    lands in ``model``): say where it belongs."""
    key = str(loc[-1]) if loc else ""
    homes = _tables().get(key)
    if homes is None or len(loc) < 2:
        return ""
    if homes == ["the top level"]:
        return (
            f"; {key!r} is a top-level key: TOML puts every key written after a [table] "
            "header inside that table, so move it above the first [table]"
        )
    return f"; {key!r} belongs in {' or '.join(homes)}"


def _places() -> dict[tuple[str, ...], type[BaseModel]]:
    """Each table of a config (its location, list positions left out) -> its model."""
    return {
        (): TrainConfig,
        ("data",): DataConfig,
        ("data", "transactions"): TransactionsConfig,
        ("features", "numeric"): NumericFeature,
        ("features", "categorical"): CategoricalFeature,
        ("outcomes",): OutcomesConfig,
        ("outcomes", "future"): FutureOutcomes,
        ("rules",): RuleConfig,
        ("model",): ModelConfig,
    }


# other tools' words for a key, by table (a close spelling or a shared word finds the rest)
_SYNONYMS: dict[tuple[str, ...], dict[str, str]] = {
    ("data",): {
        "file": "path",
        "filename": "path",
        "csv": "path",
        "id": "id_column",
        "customer_id": "id_column",
        "key": "id_column",
        "sep": "delimiter",
        "separator": "delimiter",
        "na_values": "missing_values",
        "null_values": "missing_values",
        "format": "kind",
        "charset": "encoding",
        "codec": "encoding",
    },
    ("data", "transactions"): {
        "customer_id": "customer",
        "id": "customer",
        "date": "timestamp",
        "time": "timestamp",
        "datetime": "timestamp",
        "order_date": "timestamp",
        "invoice_date": "timestamp",
        "date_column": "timestamp",
        "date_format": "timestamp_format",
        "value": "amount",
        "revenue": "amount",
        "total": "amount",
        "spend": "amount",
        "price": "unit_price",
        "qty": "quantity",
        "invoice": "order",
        "order_id": "order",
        "as_of": "reference_date",
        "snapshot_date": "reference_date",
        "end_date": "reference_date",
    },
    ("outcomes", "future"): {"window": "days", "horizon": "days", "period": "days"},
    ("rules",): {
        "condition": "when",
        "conditions": "when",
        "if": "when",
        "where": "when",
        "expr": "when",
        "expression": "when",
        "rule": "when",
        "query": "when",
    },
    ("model",): {
        "method": "algorithm",
        "algo": "algorithm",
        "outcome": "target",
        "label": "target",
        "random_state": "seed",
        "min_size": "min_share",
        "min_segment_share": "min_share",
    },
}


def _did_you_mean(loc: tuple[int | str, ...]) -> str:
    """A misspelt key (``transfrom``, ``window_days``): the key valid at its place that it
    most likely means (``app.words.nearest_key``), or else a key of another table, named
    with where it belongs (``min_frequncy`` in [model]: [[features]]'s ``min_frequency``)."""
    if not loc:
        return ""
    place = tuple(str(p) for p in loc[:-1] if not isinstance(p, int))
    model = _places().get(place)
    if model is None:
        return ""
    given = str(loc[-1])
    near = nearest_key(given, model.model_fields, _SYNONYMS.get(place))
    if near:
        return f"; did you mean {near!r}?"
    elsewhere = _tables()
    near = nearest_key(given, elsewhere)
    if not near:
        return ""
    return f"; did you mean {near!r}? (it belongs in {' or '.join(elsewhere[near])})"


# what a new user's type means here (an audit's hotel table: "date" and "boolean" were refused
# with the two types only, not what to do with such a column)
_DATE_HINT = (
    ": a date is not a feature; derive a number from it in the file first (days since the "
    "booking, say) and declare that numeric"
)
_BOOLEAN_HINT = (
    ": a column of TRUE/FALSE or 0/1 cells is read as 1/0 as 'numeric' (the default); as "
    "'categorical', TRUE/FALSE are the categories 'true' and 'false'"
)
_TYPE_HINTS = {
    **dict.fromkeys(("date", "datetime", "timestamp", "time"), _DATE_HINT),
    **dict.fromkeys(("boolean", "bool", "flag", "binary"), _BOOLEAN_HINT),
}


def _other_kind(loc: tuple[int | str, ...]) -> str:
    """A key of the other kind of feature (``impute = "mode"`` in a categorical feature's
    entry was told it "belongs in [[features]]", where it stood)."""
    if len(loc) < 4 or loc[0] != "features" or loc[2] not in ("numeric", "categorical"):
        return ""
    key, kind = str(loc[-1]), str(loc[2])
    other = NumericFeature if kind == "categorical" else CategoricalFeature
    if key not in other.model_fields:
        return ""
    said = f"; {key!r} is a key of {'numeric' if kind == 'categorical' else 'categorical'} "
    said += f"features, and this one is {kind}"
    if key == "impute":  # the mode a new user asks for is already what a category gets
        said += (
            ": a categorical feature's missing cells are a category of their own (list a "
            "marker such as 'unknown' in its missing_values to make it one)"
        )
    return said


# a table's id column under the key another table names it by: [outcomes] id_column (its key
# is id) was told "'id_column' belongs in [data]", and [data] id "belongs in [outcomes]"
_ID_KEYS = {
    ("outcomes",): ("id", "the outcomes table's column of customer ids"),
    ("data",): ("id_column", "the file's column of customer ids"),
    ("data", "transactions"): ("customer", "the log's column of customer ids"),
}
_ID_WORDS = {"id", "id_column", "customer", "customer_id", "customer_column", "key", "id_col"}


def _id_key(loc: tuple[int | str, ...], given: Any, raw: Any = None) -> str:
    key = str(loc[-1]) if loc else ""
    table = tuple(str(p) for p in loc[:-1])
    right = _ID_KEYS.get(table)
    if right is None or key not in _ID_WORDS or key == right[0]:
        return ""
    value = json.dumps(given) if isinstance(given, str) else '"..."'
    data = raw.get("data") if isinstance(raw, dict) else None
    if table == ("data",) and isinstance(data, dict) and data.get("kind") == "transactions":
        # a log's customers are read by [data.transactions] customer, not id_column (a
        # log's `customer` in [data] was told id_column, where it belongs one table down)
        return (
            "; the log's column of customer ids is customer in [data.transactions]: "
            f"customer = {value}"
        )
    return f"; {right[1]} is {right[0]} here: {right[0]} = {value}"


# a fixed number of segments, as other tools write it (``k = 4``, ``n_clusters = 4``)
_COUNT_KEYS = {"k", "n_clusters", "clusters", "n_segments", "segments", "num_segments"}


def _segment_count(loc: tuple[int | str, ...], given: Any) -> str:
    if tuple(loc[:1]) != ("model",) or len(loc) != 2 or str(loc[-1]) not in _COUNT_KEYS:
        return ""
    count = given if isinstance(given, int) and not isinstance(given, bool) else 4
    return (
        f"; a fixed number of segments is k_min = {count} and k_max = {count} (the "
        "selection chooses within k_min..k_max)"
    )


def _format_validation_error(exc: ValidationError, source: str, raw: Any = None) -> str:
    lines = []
    for err in exc.errors():
        loc = _location(err["loc"], raw)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown config key" + (
                _other_kind(err["loc"])
                or _segment_count(err["loc"], err.get("input"))
                or _id_key(err["loc"], err.get("input"), raw)
                or _where_it_belongs(err["loc"])
                or _did_you_mean(err["loc"])
            )
        elif err["type"] == "string_pattern_mismatch" and tuple(err["loc"]) == ("model", "name"):
            msg = model_name_problem(err.get("input"), "name = {!r}")
        elif err["type"] == "union_tag_invalid":  # a feature's type
            given = (err.get("ctx") or {}).get("tag", "")
            msg = f"type {given!r} is not 'numeric' or 'categorical'" + _TYPE_HINTS.get(
                str(given).strip().lower(), ""
            )
        lines.append(f"{loc}: {msg}" if loc else msg)
    return f"invalid config {source}: " + "; ".join(lines)


def _location(loc: tuple[int | str, ...], raw: Any) -> str:
    """``features.0 ('age').transform``: a feature or rule named as written, without the
    feature's kind pydantic adds (``features.0.numeric.transform``)."""
    parts = list(loc)
    if len(parts) >= 3 and parts[0] == "features" and parts[2] in ("numeric", "categorical"):
        del parts[2]
    text = ".".join(str(p) for p in parts)
    if len(parts) >= 2 and parts[0] in ("features", "rules") and isinstance(parts[1], int):
        try:
            name = raw[parts[0]][parts[1]]["name"]
        except (KeyError, IndexError, TypeError):
            return text
        if isinstance(name, str):
            rest = ".".join(str(p) for p in parts[2:])
            return f"{parts[0]}.{parts[1]} ({name[:60]!r})" + (f".{rest}" if rest else "")
    return text


def parse_config(
    raw: dict[str, Any], *, base_dir: Path, source: str = "", stored: bool = False
) -> TrainConfig:
    """A validated config; ``stored``: a stored version's (``manifest.config``), which
    refusals added after it was trained do not apply to."""
    try:
        config = TrainConfig.model_validate(raw, context={STORED: stored})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source, raw)) from None
    path = config.data.path
    if not path.is_absolute():
        data = config.data.model_copy(update={"path": (base_dir / path).resolve()})
        config = config.model_copy(update={"data": data})
    table = config.outcomes.path
    if table is not None and not table.is_absolute():
        outcomes = config.outcomes.model_copy(update={"path": (base_dir / table).resolve()})
        config = config.model_copy(update={"outcomes": outcomes})
    return config


def load_config(path: Path) -> TrainConfig:
    """Read and validate a TOML training config."""
    try:
        # utf-8-sig: Windows editors (Notepad) save UTF-8 with a byte-order mark, which
        # tomllib refused as "Invalid statement (at line 1, column 1)"
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError as exc:  # (was the codec's traceback)
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"config {path} is not UTF-8 text: line {line} holds the byte "
            f"{exc.object[exc.start : exc.start + 1]!r}; save the file as UTF-8 (TOML is UTF-8)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        text = path.read_text(encoding="utf-8-sig")
        raise ConfigError(
            f"config {path} is not valid TOML: {exc}{_twice_hint(exc, text)}"
        ) from None
    return parse_config(raw, base_dir=path.parent, source=str(path))


def _twice_hint(exc: tomllib.TOMLDecodeError, text: str) -> str:
    """What TOML's "Cannot declare ('outcomes', 'future') twice" means: a new user wrote the
    README's short ``outcomes = ["review_score"]`` above an ``[outcomes.future]`` table (a
    log's repurchase), and the error named neither the line nor the fix."""
    match = re.match(r"Cannot declare \(([^)]*)\) twice", str(exc))
    if match is None:
        return ""
    names = re.findall(r"'([^']*)'", match.group(1))
    if names and names[0] == "outcomes" and re.search(r"(?m)^\s*outcomes\s*=", text):
        return (
            ": `outcomes = [...]` and an [outcomes] or [outcomes.future] table both declare "
            "outcomes, which TOML refuses; write the columns in the table instead: "
            "[outcomes] with columns = [...] (beside its path, positive or [outcomes.future])"
        )
    table = ".".join(names)
    return (
        f": [{table}] is declared twice (a table written twice, or a key {names[-1]} = ... "
        f"beside a [{table}] table); write its keys once, in one table"
        if names
        else ""
    )
