"""Segment names an analyst accepts: words for a feature's ends, categories named with their
feature, and the transaction derivation's own words (issue 14, item 9, in part)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.registry.manifest import CategoryShare, Manifest, NumericProfile
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.job import train
from app.training.profile import Ends, _generate_name, _words
from app.words import label_of
from tests.training.test_frictions import log_config, retail_log


def test_feature_words_and_categories_named_with_their_feature(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 900
    group = rng.choice(3, n, p=[0.4, 0.4, 0.2])
    frame = pd.DataFrame(
        {
            "customer_id": [f"n{i}" for i in range(n)],
            "days_since_order": np.array([5.0, 60.0, 300.0])[group] + rng.normal(0, 2, n),
            "contract": np.where(
                group == 2, "Month-to-month", rng.choice(["One year", "Two year"], n)
            ),
        }
    )
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data)},
        "features": [
            {"name": "days_since_order", "high": "lapsed", "low": "recent"},
            {"name": "contract", "type": "categorical"},
        ],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    names = [s.name for s in m.segments]
    lapsed = next(s for s in m.segments if s.numeric["days_since_order"].z > 1)
    # the category that defines the segment (all of it, against 21% of customers) leads
    assert lapsed.name == "Month-to-month contract, very lapsed", names
    assert not any("mostly" in n or "days since order" in n for n in names), names
    assert len(set(names)) == len(names)
    leads = [n.split(",")[0] for n in names]
    assert len(set(leads)) == len(leads), names


def test_a_yes_no_number_is_named_as_having_it_or_not(tmp_path: Path) -> None:
    """0/1 and true/false features were named by degree ("Very high has app", never "no
    app": a median of 0 left no side to be on); they are named as having it or not."""
    rng = np.random.default_rng(5)
    n = 1200
    group = rng.choice(3, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"f{i}" for i in range(n)],
            "spend": np.array([20.0, 80.0, 200.0])[group] + rng.normal(0, 3, n),
            "has_app": group == 1,  # written true/false
            "is_active": (group != 2).astype(int),  # written 1/0
            "newsletter": np.where(group == 2, 1, 0),
        }
    )
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data)},
        "features": [{"name": c} for c in ("spend", "has_app", "is_active", "newsletter")],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    names = {s.name.lower() for s in m.segments}
    by_spend = sorted(m.segments, key=lambda s: s.numeric["spend"].mean)
    said = [set(s.name.lower().replace(" and ", ", ").split(", ")) for s in by_spend]
    assert {"no app", "no newsletter"} & said[0], names
    assert "has app" in said[1], names
    assert {"not active", "newsletter"} & said[2], names
    assert not any("high has app" in w or "low is active" in w for w in names), names


def test_a_yes_no_state_is_denied_with_not(tmp_path: Path) -> None:
    """An insurance table's 0/1 ``Previously_Insured`` (and a Yes/No ``Married``) named a
    segment "No previously insured": a state is denied with "not"; a thing keeps "no"."""
    rng = np.random.default_rng(7)
    n = 1200
    group = rng.choice(3, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"f{i}" for i in range(n)],
            "premium": np.array([20.0, 80.0, 200.0])[group] + rng.normal(0, 3, n),
            "Previously_Insured": (group == 2).astype(int),
            "Married": np.where(group == 1, "Yes", "No"),
            "feed": (group == 2).astype(int),  # a thing ending in -ed: "no feed"
        }
    )
    frame.to_csv(data := tmp_path / "d.csv", index=False)
    raw = {
        "data": {"path": str(data)},
        "features": [
            {"name": "premium"},
            {"name": "Previously_Insured"},
            {"name": "Married", "type": "categorical"},
            {"name": "feed"},
        ],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    names = " / ".join(s.name.lower() for s in m.segments)
    assert "not previously insured" in names or "not married" in names, names
    assert "no previously insured" not in names and "no married" not in names, names
    assert "not feed" not in names, names


def _three_groups(tmp_path: Path, group: np.ndarray, **columns: object) -> Manifest:
    """A table of ``columns`` (each a numeric feature) with a text id, trained at k = 3."""
    frame = pd.DataFrame({"id": [f"c{i}" for i in range(len(group))], **columns})
    frame.to_csv(data := tmp_path / "d.csv", index=False)
    raw = {
        "data": {"path": str(data), "id_column": "id"},
        "features": [{"name": c} for c in columns],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    return train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest


def test_a_yes_no_place_or_company_is_denied_with_not_or_without(tmp_path: Path) -> None:
    """A game's True/False ``in_guild`` named its largest segment "No in guild", and a
    count's column ``NumFriends`` said "zero num friends": where a customer is is denied with
    "not" ("not in guild"), ``with_coach`` with "without", a count by what it counts; and
    a 0/1 feature is described by its share, as a category is."""
    rng = np.random.default_rng(8)
    group = rng.choice(3, 1500)
    m = _three_groups(
        tmp_path,
        group,
        playtime=np.array([5.0, 40.0, 200.0])[group] + rng.normal(0, 2, 1500),
        in_guild=group == 2,  # written True/False
        with_coach=(group == 1).astype(int),
        NumFriends=np.where(group == 0, 0, rng.poisson(6, 1500) + 1),
    )
    names = " / ".join(s.name.lower() for s in m.segments)
    assert "not in guild" in names or "without coach" in names, names
    assert "zero friends" in names, names
    assert "no in guild" not in names and "no with coach" not in names, names
    assert "num friends" not in names and "zero number of" not in names, names
    # described as a category is, with its share of all: "in guild above average (mean 1,
    # +1.2 sd; 100% of the segment above the median of all)" told a marketer nothing new
    guild = next(s for s in m.segments if s.numeric["in_guild"].mean == 1.0)
    assert "100% in guild (33% of all)" in guild.description, guild.description
    assert not any("guild above" in s.description or "guild below" in s.description
                   for s in m.segments), [s.description for s in m.segments]  # fmt: skip


def test_a_yes_no_number_whose_name_denies_is_never_named_no_no(tmp_path: Path) -> None:
    """A 0/1 feature called ``no_show`` was named "no no show" where it is 0."""
    rng = np.random.default_rng(6)
    n = 1200
    group = rng.choice(3, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"f{i}" for i in range(n)],
            "spend": np.array([20.0, 80.0, 200.0])[group] + rng.normal(0, 3, n),
            "no_show": (group == 0).astype(int),
            "not_subscribed": (group != 2).astype(int),
        }
    )
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data)},
        "features": [{"name": c} for c in ("spend", "no_show", "not_subscribed")],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    names = [s.name.lower() for s in m.segments]
    by_spend = sorted(m.segments, key=lambda s: s.numeric["spend"].mean)
    said = [set(s.name.lower().replace(" and ", ", ").split(", ")) for s in by_spend]
    assert {"no show", "not subscribed"} & said[0], names
    assert {"show", "not subscribed"} & said[1], names
    assert {"show", "subscribed"} & said[2], names
    assert not any("no no" in w or "no not" in w for w in names), names


def test_a_segment_of_the_customers_without_a_category_is_named_by_it(tmp_path: Path) -> None:
    """A cluster of exactly the customers with no region (blank, or ``NA`` listed in
    ``missing_values``) was "High spend #2", beside "High spend": the one trait that set it
    apart went unsaid."""
    rng = np.random.default_rng(2)
    n = 3000
    group = rng.choice(3, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"r{i}" for i in range(n)],
            "spend": rng.normal(50, 5, n),
            "region": np.where(group == 0, "NA", np.where(group == 1, "EU", "APAC")),
        }
    )
    frame.loc[frame.index[group == 0][::2], "region"] = ""  # blank, or written NA
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data), "missing_values": ["NA"]},
        "features": [{"name": "spend"}, {"name": "region", "type": "categorical"}],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    names = [s.name for s in m.segments]
    unknown = [s for s in m.segments if s.categorical["region"]["__missing__"].share > 0.9]
    assert len(unknown) == 1, names
    assert unknown[0].name.startswith("Region unknown"), names
    assert "region unknown" in unknown[0].description, unknown[0].description
    assert not any("#" in n or "__" in n for n in names), names


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("TotalCharges", "total charges"),
        ("total_charges", "total charges"),
        ("CASH_ADVANCE", "cash advance"),  # was "Very high CASH ADVANCE"
        ("PRC_FULL_PAYMENT", "PRC full payment"),  # short upper-case words are acronyms
        ("MRRGrowth", "MRR growth"),
        ("NumWebPurchases", "number of web purchases"),  # was "Very high num web purchases"
        ("MntWines", "spend on wines"),  # was "mnt wines"
        ("avg_basket", "average basket"),
        ("Total_Trans_Amt", "total transaction amount"),  # a card table's, was "trans amt"
        ("Total_Trans_Ct", "total transaction count"),
        ("Contacts_Count_12_mon", "contacts count 12 months"),
        ("Total_Revolving_Bal", "total revolving balance"),
        ("CT_state", "CT state"),  # an upper-case short word stays an acronym
        ("num", "num"),  # a column of one word is not spelled out
        ("sessions_30d", "sessions 30d"),
        ("AcceptedCmp1", "accepted cmp1"),
        ("feature-usage", "feature-usage"),
        ("Total Spend (€)", "total spend (€)"),
        ("NUM_OF_PRODUCTS", "number of products"),  # was "NUM OF products"
        ("AGE", "age"),
        ("AMT_PER_VISIT", "amount per visit"),
        # R's names (the bank-marketing table): the segment was "Very high cons.conf.idx,
        # very low emp.var.rate"
        ("emp.var.rate", "emp var rate"),
        ("cons.price.idx", "cons price index"),
        ("Annual.Income..k..", "annual income k"),  # read.csv's "Annual Income (k$)"
        ("euribor3m", "euribor3m"),
        ("version1.2", "version1.2"),  # a dot between digits is a decimal point
        ("admin.", "admin."),
        # the customer-personality table's: "number of web visits month", "gold prods"
        ("NumWebVisitsMonth", "number of web visits per month"),
        ("MntGoldProds", "spend on gold products"),
        ("orders_week", "orders per week"),
        ("status_month", "status month"),  # no plural: no count per period
        ("signup_month", "signup month"),
    ],
)
def test_a_feature_without_a_label_is_named_in_words(name: str, label: str) -> None:
    assert label_of(name) == label


def test_the_words_for_an_absence_never_deny_twice() -> None:
    from app.training.profile import _category_trait, _no

    assert _no("newsletter") == "no newsletter"
    assert _no("no show") == "show"
    assert _no("no children") == "children"  # has_no_children's low end
    assert _no("not active", "not") == "active"  # is_not_active's low end
    assert _no("active", "not") == "not active"
    assert _no("in guild") == "not in guild"  # was "no in guild"
    assert _no("with coach") == "without coach"
    assert _no("income") == "no income"  # "in..." as a word's start is no preposition
    assert _category_trait("__missing__", "region", 0.9) == "region unknown"
    assert _category_trait("__missing__", "region", 0.4) == "region often unknown"


def test_a_tree_leaf_of_the_customers_without_a_category_is_named_by_it() -> None:
    """An audit's tree named its highest-churn leaf "Region not APAC, EU": its customers
    were those without a region (written NA in the file)."""
    from app.training.profile import _leaf_name
    from app.training.tree_names import LeafSplit

    split = LeafSplit("region", (1,), category="EU", is_category=False, excluded=("APAC", "EU"))
    shares = {
        "region": {
            "__missing__": CategoryShare(share=1.0, population_share=0.45, z=3.0),
            "EU": CategoryShare(share=0.0, population_share=0.3, z=-1.0),
        }
    }
    numeric = {"spend": NumericProfile(mean=1, median=1, z=0.1)}
    labels = {"region": "region", "spend": "spend"}
    name = _leaf_name(split, numeric, shares, [], labels, {}, set())
    assert name.startswith("Region unknown"), name
    shares["region"]["__missing__"] = CategoryShare(share=0.2, population_share=0.45, z=-1.0)
    name = _leaf_name(split, numeric, shares, [], labels, {}, set())
    assert name.startswith("Region not APAC, EU"), name


def test_no_two_segments_share_a_name_or_its_leading_phrase() -> None:
    """Four segments all most set apart by high spend: each leads with a different trait."""
    labels = {"spend": "spend", "visits": "visits", "age": "age", "paperless": "paperless billing"}
    used: set[str] = set()
    leads: set[str] = set()
    names = []
    for visits in (1.2, 0.9, -0.9, 0.6):
        numeric = {
            "spend": NumericProfile(mean=1, median=1, z=2.0),
            "visits": NumericProfile(mean=1, median=1, z=visits),
            "age": NumericProfile(mean=1, median=1, z=0.7),
        }
        categorical = {"paperless": {"No": CategoryShare(share=0.95, population_share=0.4, z=1.1)}}
        name = _generate_name(numeric, categorical, labels, used, None, leads)
        used.add(name)
        names.append(name)
    # a yes/no category reads as its feature ("no paperless billing"), never "(mostly No)"
    assert names == [
        "Very high spend, very high visits",
        "No paperless billing, very high spend",
        "Low visits, very high spend",
        "High age, very high spend",
    ]


def test_no_two_names_say_the_same_traits_in_another_order() -> None:
    """An audit's SaaS segments were "Highly engaged, high MRR" and "High MRR, highly
    engaged": a multi-word word carries no degree, so both said the same two things."""
    labels = {"logins": "logins", "mrr": "MRR", "tickets": "support tickets"}
    words = {"logins": Ends("highly engaged", "dormant")}
    used: set[str] = set()
    leads: set[str] = set()
    names = []
    for logins, mrr, tickets in ((2.2, 0.8, 0.3), (1.3, 0.9, -0.6)):
        numeric = {
            "logins": NumericProfile(mean=1, median=1, z=logins),
            "mrr": NumericProfile(mean=1, median=1, z=mrr),
            "tickets": NumericProfile(mean=1, median=1, z=tickets),
        }
        name = _generate_name(numeric, {}, labels, used, words, leads)
        used.add(name)
        names.append(name)
    assert names[0] == "Highly engaged, high MRR"
    assert names[1] == "High MRR, highly engaged, low support tickets"  # one more to tell
    assert len({frozenset(n.lower().split(", ")) for n in names}) == 2


def test_a_transaction_log_names_segments_in_its_own_words(tmp_path: Path) -> None:
    raw = log_config(retail_log(tmp_path), "1998-01-01")
    raw["features"] = [{"name": "recency_days"}, {"name": "monetary"}]
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    names = " ".join(s.name for s in m.segments).lower()
    assert "recency days" not in names and "monetary" not in names, names
    assert any(w in names for w in ("lapsed", "recent", "high spend", "low spend")), names
    # the descriptions and the features' labels say it in the same words (they said
    # "monetary" and "recency days" beside "High spend" names: a new-user audit)
    labels = {f.name: f.label for f in m.features}
    assert labels == {"recency_days": "days since last order", "monetary": "spend"}
    text = " ".join(s.description for s in m.segments).lower()
    assert "recency days" not in text and "monetary" not in text, text


def test_one_time_only_where_the_segment_bought_once() -> None:
    """A log's low-frequency segment is "one-time" only if its median customer ordered once
    (an audit found "one-time" on segments whose median bought twice or three times, and a
    "very one-time"); below average but buying again is "infrequent"."""
    words = {"frequency": Ends("frequent", "one-time"), "recency_days": Ends("lapsed", "recent")}
    labels = {"frequency": "frequency", "recency_days": "recency days"}
    names = []
    used: set[str] = set()
    for median, z in ((1.0, -1.4), (3.0, -1.2), (2.0, -0.6)):
        numeric = {
            "frequency": NumericProfile(mean=median, median=median, z=z),
            "recency_days": NumericProfile(mean=90, median=90, z=1.5 + z),
        }
        name = _generate_name(numeric, {}, labels, used, words, set())
        used.add(name)
        names.append(name)
    assert names[0].startswith("One-time") and "very one-time" not in names[0].lower()
    assert "very infrequent" in names[1].lower() and "one-time" not in names[1].lower()
    assert "infrequent" in names[2].lower() and "one-time" not in names[2].lower()


def test_a_comparative_word_takes_much_not_very() -> None:
    """A mall config's ``high = "older"``, ``low = "younger"`` named a segment "Very younger,
    high spending score"; an adjective keeps "very" ("very lapsed", "very clever")."""
    words = {
        "age": Ends("older", "younger"),
        "wit": Ends("clever", "slow"),
        "spend": Ends("spender", "saver"),
    }
    labels = {"age": "age", "wit": "wit", "spend": "spend"}
    far = {
        "age": NumericProfile(mean=25, median=25, z=-1.6),
        "wit": NumericProfile(mean=9, median=9, z=1.2),
    }
    name = _generate_name(far, {}, labels, set(), words, set()).lower()
    assert "much younger" in name and "very younger" not in name, name
    assert "very clever" in name and "much clever" not in name, name
    # a kind of customer takes no degree: never "very spender" (nor "much spender")
    spender = {"spend": NumericProfile(mean=900, median=900, z=2.1)}
    assert _generate_name(spender, {}, labels, set(), words, set()) == "Spender"


def test_an_age_feature_is_older_or_younger_without_a_config_word(tmp_path: Path) -> None:
    """A mall table's segments read "Very high age, low annual income (k$)": a feature whose
    label is ``age`` (``Age``, ``AGE``) takes "older" and "younger" unless the config gives
    its own words; other features have none."""
    raw = {
        "data": {"path": str(tmp_path / "d.csv")},
        "features": [
            {"name": "Age"},
            {"name": "AGE_YEARS", "label": "age"},
            {"name": "age2", "label": "age", "high": "senior", "low": "junior"},
            {"name": "Annual Income (k$)"},
        ],
    }
    words = _words(parse_config(raw, base_dir=tmp_path))
    assert words == {
        "Age": Ends("older", "younger"),
        "AGE_YEARS": Ends("older", "younger"),
        "age2": Ends("senior", "junior"),
    }
    labels = {"Age": "age", "Annual Income (k$)": "annual income (k$)"}
    far = {
        "Age": NumericProfile(mean=60, median=60, z=1.6),
        "Annual Income (k$)": NumericProfile(mean=30, median=30, z=-0.8),
    }
    assert _generate_name(far, {}, labels, set(), words, set()) == (
        "Much older, low annual income (k$)"
    )


def test_a_year_of_birth_is_younger_or_older(tmp_path: Path) -> None:
    """A food retailer's ``Year_Birth`` (a new user's config, as the column is) named its
    youngest customers "High year birth": a later year of birth is younger, an earlier one
    older, in names; as written in descriptions (the column's own numbers)."""
    rng = np.random.default_rng(11)
    group = rng.choice(3, 1500)
    m = _three_groups(
        tmp_path,
        group,
        Year_Birth=np.array([1950, 1972, 1995])[group] + rng.integers(-4, 5, 1500),
        MntWines=np.array([600.0, 300.0, 40.0])[group] * rng.lognormal(0, 0.2, 1500),
    )
    by_year = sorted(m.segments, key=lambda s: s.numeric["Year_Birth"].mean)
    names = [s.name for s in by_year]
    assert "older" in names[0].lower() and "younger" in names[2].lower(), names
    assert not any("year birth" in name.lower() for name in names), names
    assert "spend on wines" in " ".join(names).lower(), names  # MntWines, spelled out
    assert "year birth below average" in by_year[0].description, by_year[0].description
    assert [_words_of(label) for label in ("year of birth", "birth year", "YOB", "birthday")] == [
        ("younger", "older"), ("younger", "older"), ("younger", "older"), (None, None),
    ]  # fmt: skip


def _words_of(label: str) -> tuple[str | None, str | None]:
    from app.training.profile import _label_words

    return _label_words(label)


def test_a_time_since_something_is_long_ago_or_recent(tmp_path: Path) -> None:
    """The docs' pandas lines write a date as days_since_<column>: a SaaS table's segments
    read "Very high days since last login", a retailer's "Very high days since dt customer".
    A label of days (weeks, months, years) since something takes "<it> long ago" and "recent
    <it>" (a trailing "date" left out), unless the config gives its own words."""
    raw = {
        "data": {"path": str(tmp_path / "d.csv")},
        "features": [
            {"name": "days_since_last_login"},
            {"name": "DaysSinceSignupDate"},
            {"name": "months_since_the_first_order"},
            {"name": "days_since_order", "high": "lapsed", "low": "recent"},
            {"name": "recency_days"},
            # a billing export's date of creation: "Recent created"
            {"name": "days_since_created"},
            {"name": "days_since_account_opened"},
            {"name": "days_since_last_feed"},
        ],
    }
    words = _words(parse_config(raw, base_dir=tmp_path))
    assert words == {
        "days_since_last_login": Ends("last login long ago", "recent last login"),
        "DaysSinceSignupDate": Ends("signup long ago", "recent signup"),
        "months_since_the_first_order": Ends("first order long ago", "recent first order"),
        "days_since_order": Ends("lapsed", "recent"),
        "days_since_created": Ends("created long ago", "created recently"),
        "days_since_account_opened": Ends("account opened long ago", "account opened recently"),
        "days_since_last_feed": Ends("last feed long ago", "recent last feed"),
    }
    labels = {"days_since_last_login": "days since last login", "MRR": "MRR"}
    far = {
        "days_since_last_login": NumericProfile(mean=200, median=200, z=1.6),
        "MRR": NumericProfile(mean=30, median=30, z=-0.8),
    }
    assert _generate_name(far, {}, labels, set(), words, set()) == ("Last login long ago, low MRR")


def test_two_segments_of_one_defining_category_are_told_apart_without_a_number() -> None:
    """Two segments all of them on two-year contracts, one long-standing and one just below
    average on everything: the second led with the category and its faint difference (an
    outside try got "Two year Contract #2"), and its description names the category (it
    said "close to the population average on every feature")."""
    from app.training.profile import _describe

    labels = {"tenure": "tenure months", "charges": "monthly charges", "contract": "contract"}
    two_year = {"Two year": CategoryShare(share=1.0, population_share=0.24, z=1.9)}
    used: set[str] = set()
    leads: set[str] = set()
    long_standing = {
        "tenure": NumericProfile(mean=57.5, median=60.0, z=1.2),
        "charges": NumericProfile(mean=60.0, median=60.0, z=0.02),
    }
    first = _generate_name(long_standing, {"contract": two_year}, labels, used, {}, leads)
    used.add(first)
    average = {
        "tenure": NumericProfile(mean=26.9, median=25.0, z=-0.15),
        "charges": NumericProfile(mean=66.0, median=66.0, z=0.08),
    }
    second = _generate_name(average, {"contract": two_year}, labels, used, {}, leads)
    assert first == "Two year contract, very high tenure months"
    assert second == "Two year contract and slightly lower tenure months"
    described = _describe(0.18, average, {"contract": two_year}, labels)
    assert described == (
        "18.0% of customers: 100% Two year contract (24% of all); close to the population "
        "average on every numeric feature."
    )


def test_a_description_names_a_common_category_the_segment_lacks() -> None:
    """An audit's segment with no month-to-month contract (55% of all) and average numbers
    was described "close to the population average on every feature", while its name said
    "Not Month-to-month contract"."""
    from app.training.profile import _describe

    labels = {"tenure": "tenure", "contract": "contract"}
    contract = {
        "Month-to-month": CategoryShare(share=0.0, population_share=0.55, z=-1.1),
        "One year": CategoryShare(share=0.52, population_share=0.21, z=0.76),
        "Two year": CategoryShare(share=0.48, population_share=0.24, z=0.56),
    }
    numeric = {"tenure": NumericProfile(mean=30.0, median=29.0, z=0.1)}
    described = _describe(0.25, numeric, {"contract": contract}, labels)
    assert described == (
        "25.0% of customers: 0% Month-to-month contract (55% of all); close to the population "
        "average on every numeric feature."
    )
    # a few of it are not none of it: 0.4% reads so, not "0%"
    few = {
        **contract,
        "Month-to-month": contract["Month-to-month"].model_copy(update={"share": 0.004}),
    }
    assert _describe(0.25, numeric, {"contract": few}, labels).startswith(
        "25.0% of customers: 0.4% Month-to-month contract (55% of all);"
    )
    name = _generate_name(numeric, {"contract": contract}, labels, set(), {}, set())
    assert name.lower().startswith("not month-to-month contract")


def test_a_name_says_only_what_most_of_the_segment_is() -> None:
    """A few extreme customers move a segment's mean: "lapsed" was said of a segment a third of
    whom had bought within weeks. A numeric trait names a segment only where two thirds of it
    are on that side of the population's median; the description says how many are."""
    from app.training.profile import _describe

    words = {"recency_days": Ends("lapsed", "recent"), "monetary": Ends("high spend", "low spend")}
    labels = {"recency_days": "recency", "monetary": "spend"}
    skewed = {
        "recency_days": NumericProfile(mean=200.0, median=40.0, z=0.9, on_side=0.55),
        "monetary": NumericProfile(mean=900.0, median=850.0, z=1.2, on_side=0.93),
    }
    name = _generate_name(skewed, {}, labels, set(), words, set())
    assert "lapsed" not in name.lower() and name.lower().startswith("high spend"), name
    consistent = {
        **skewed,
        "recency_days": skewed["recency_days"].model_copy(update={"on_side": 0.8}),
    }
    assert "lapsed" in _generate_name(consistent, {}, labels, set(), words, set()).lower()
    described = _describe(0.3, skewed, {}, labels)
    assert "recency above average (mean 200, +0.9 sd; 55% of the segment above the median" in (
        described
    )
    # a count most customers share the median of (1 line): the description says so, not "49%
    # below" counting those at the median half (a new user's segment: 0% below, 98.6% at it)
    lines = {
        "lines": NumericProfile(mean=1.015, median=1.0, z=-0.6, on_side=0.493, at_median=0.986)
    }
    described = _describe(0.3, lines, {}, {"lines": "lines"})
    assert "0% of the segment below the median of all, 99% at it" in described, described


def test_a_description_writes_large_means_as_people_read_them() -> None:
    """4 significant digits wrote an income's mean as "7.392e+04" in the description the
    API, the dashboard and the report show: a large mean is a whole number with thousands
    separators, a small one keeps its digits."""
    from app.training.profile import _describe

    numeric = {
        "income": NumericProfile(mean=73_921.4, median=72_000.0, z=0.9, on_side=0.99),
        "visits": NumericProfile(mean=3.03349, median=3.0, z=-0.9, on_side=0.9),
    }
    described = _describe(0.35, numeric, {}, {"income": "income", "visits": "web visits"})
    assert "income above average (mean 73,921, +0.9 sd" in described, described
    assert "web visits below average (mean 3.033, -0.9 sd" in described, described


def test_new_only_where_the_median_customer_joined_within_three_months() -> None:
    """A new user's segment of repeat buyers of seven months (median tenure 202 days, below
    the population's) was named "New"; it is "newer", and "new" where the median customer's
    first order is under 90 days old."""
    words = {"tenure_days": Ends("long-standing", "new")}
    labels = {"tenure_days": "tenure days"}
    months = {"tenure_days": NumericProfile(mean=201.1, median=202.0, z=-0.9, on_side=0.9)}
    weeks = {"tenure_days": NumericProfile(mean=35.0, median=30.0, z=-1.4, on_side=1.0)}
    assert _generate_name(months, {}, labels, set(), words, set()) == "Newer"
    assert _generate_name(weeks, {}, labels, set(), words, set()) == "Very new"


def test_only_the_segment_furthest_out_on_a_feature_is_very_so(tmp_path: Path) -> None:
    """An insurance table named a segment "Very low satisfaction, low NPS" beside a segment
    less satisfied still (named by its claims): "very" is kept for the one furthest out."""
    rng = np.random.default_rng(9)
    n = 3_000
    group = rng.choice(3, n, p=[0.7, 0.15, 0.15])
    # group 1: unhappy; group 2: many claims and unhappier still
    satisfaction = np.array([0.0, -3.0, -4.0])[group] + rng.normal(0, 0.5, n)
    claims = np.array([0.0, 0.0, 6.0])[group] + rng.normal(0, 0.5, n)
    frame = pd.DataFrame(
        {"customer_id": [f"s{i}" for i in range(n)], "satisfaction": satisfaction, "claims": claims}
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    raw = {
        "data": {"path": str(tmp_path / "d.csv")},
        "features": [{"name": "satisfaction"}, {"name": "claims"}],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    segments = train(
        parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")
    ).manifest.segments
    for feature in ("satisfaction", "claims"):
        for word, sign in (("very low", -1), ("very high", 1)):
            named = [s for s in segments if f"{word} {feature}" in s.name.lower()]
            for seg in named:
                furthest = max(sign * s.numeric[feature].z for s in segments)
                assert sign * seg.numeric[feature].z == furthest, [s.name for s in segments]
    unhappy = min(segments, key=lambda s: s.numeric["claims"].z + s.numeric["satisfaction"].z)
    assert any("low satisfaction" in s.name.lower() for s in segments if s is not unhappy)


def test_a_slight_difference_most_of_the_segment_does_not_share_names_nothing() -> None:
    """A game's largest segment was "Low in-app spend": 98% of it at the population's median
    (no spend, as nearly everyone), the difference a few payers fewer. A slight difference
    names a segment only where most of it is on that side, as a strong one must."""
    labels = {"spend": "in-app spend", "level": "level"}
    at_zero = NumericProfile(mean=0.03, median=0.0, z=-0.3, on_side=0.49, at_median=0.98)
    spread = NumericProfile(mean=1, median=1, z=0.3, on_side=0.8, at_median=0.0)
    name = _generate_name({"spend": at_zero, "level": spread}, {}, labels, set(), {}, set())
    assert "spend" not in name.lower() and "level" in name.lower(), name
    alone = _generate_name({"spend": at_zero}, {}, labels, set(), {}, set())
    assert alone == "Typical customers", alone


def test_a_name_never_repeats_a_phrase() -> None:
    """A credit-card table's ``PURCHASES`` and ``PURCHASES_TRX`` (labels ``purchases`` and
    ``purchases TRX``) named a segment "Very low purchases, very low purchases TRX": a trait
    that says an earlier one's whole phrase again (or is said whole in it) is left out, and
    the next trait takes its place. Category values keep their case (``Verheiratet``)."""
    labels = {
        "purchases": "purchases",
        "purchases_trx": "purchases TRX",
        "balance": "balance",
        "stand": "Familienstand",
    }
    numeric = {
        "purchases": NumericProfile(mean=1, median=1, z=-1.6),
        "purchases_trx": NumericProfile(mean=1, median=1, z=-1.5),
        "balance": NumericProfile(mean=1, median=1, z=0.9),
    }
    verheiratet = {"Verheiratet": CategoryShare(share=0.9, population_share=0.4, z=0.95)}
    name = _generate_name(numeric, {}, labels, set(), {}, set())
    assert name == "Very low purchases, high balance"
    # the longer phrase first: the shorter one it holds is not said again either
    numeric["purchases_trx"] = NumericProfile(mean=1, median=1, z=-1.7)
    name = _generate_name(numeric, {"stand": verheiratet}, labels, set(), {}, set())
    assert name == "Very low purchases TRX, Verheiratet Familienstand", name
    # a segment whose every other trait leads a name already: no "X and X ..." either
    used = {"Very low purchases TRX, Verheiratet Familienstand"}
    leads = {"very low purchases trx", "verheiratet familienstand", "high balance"}
    name = _generate_name(numeric, {"stand": verheiratet}, labels, used, {}, leads)
    assert "purchases and" not in name.lower() and name.lower().count("purchases") == 1, name


def test_two_segments_of_the_same_traits_are_told_apart_by_a_mean_before_a_number() -> None:
    """An audit's wide SaaS table got "Low seats, low MRR" and "Low MRR #2, low seats": both
    low on seats and MRR, told apart only by a usage count (-0.3 sd against +0.4 sd, too few
    of either segment on its side for a trait). The mean's difference names the second."""
    labels = {"seats": "seats", "mrr": "MRR", "events": "feature 06 events"}
    used: set[str] = set()
    leads: set[str] = set()
    names = []
    for seats, mrr, events in ((-0.66, -0.64, -0.31), (-0.56, -0.58, 0.37)):
        numeric = {
            "seats": NumericProfile(mean=1, median=1, z=seats, on_side=0.8),
            "mrr": NumericProfile(mean=1, median=1, z=mrr, on_side=0.78),
            "events": NumericProfile(mean=1, median=1, z=events, on_side=0.64),
        }
        name = _generate_name(numeric, {}, labels, used, {}, leads)
        used.add(name)
        names.append(name)
    assert names[0] == "Low seats, low MRR"
    assert names[1] == "Low MRR, low seats, higher feature 06 events"
    # with nothing else to tell them apart, a number is still the last resort
    same = {"seats": NumericProfile(mean=1, median=1, z=-0.66, on_side=0.8)}
    first = _generate_name(same, {}, {"seats": "seats"}, set(), {}, set())
    assert _generate_name(same, {}, {"seats": "seats"}, {first}, {}, {first.lower()}) == (
        "Low seats #2"
    )


def test_a_one_letter_category_is_a_no_only_among_yes_no_categories(tmp_path: Path) -> None:
    """An audit's ``region`` of N, S, E and W named the north's segment "No region": ``N``
    read as a no. Only a feature whose categories are yes/no words says "no ...", as a tree
    leaf's name does; a Y/N feature still does."""
    rng = np.random.default_rng(8)
    n = 1200
    group = rng.choice(4, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"r{i}" for i in range(n)],
            "spend": np.array([20.0, 60.0, 150.0, 400.0])[group] + rng.normal(0, 3, n),
            "region": np.array(["N", "S", "E", "W"])[group],
            "partner": np.where(group == 0, "N", rng.choice(["Y", "N"], n, p=[0.8, 0.2])),
        }
    )
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    features = [
        {"name": "spend"},
        {"name": "region", "type": "categorical"},
        {"name": "partner", "type": "categorical"},
    ]
    raw = {
        "data": {"path": str(data)},
        "features": features,
        "model": {"k_min": 4, "k_max": 4, "stability_bootstraps": 0},
    }
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    north = next(s for s in m.segments if s.categorical["region"]["N"].share > 0.9)
    assert "N region" in north.name and "no region" not in north.name.lower(), north.name
    assert "100% N region (" in north.description, north.description
    assert "100% no partner (" in north.description, north.description
    tree = {
        **raw,
        "features": features[1:],
        "outcomes": ["bought"],
        "model": {"algorithm": "tree", "target": "bought", "k_min": 2, "k_max": 2},
    }
    frame["bought"] = (frame["region"] == "N").astype(int)
    frame.to_csv(data, index=False)
    m = train(parse_config(tree, base_dir=tmp_path), ModelStore(tmp_path / "t")).manifest
    names = sorted(s.name.split(",")[0] for s in m.segments)
    assert names == ["N region", "Not N region"], names


def test_a_yes_beside_a_third_category_still_names_the_feature() -> None:
    """Telco's ``OnlineSecurity`` is Yes, No or "No internet service": its Yes is still the
    feature itself ("online security"), never "Yes online security"."""
    labels = {"security": "online security", "spend": "spend"}
    security = {
        "Yes": CategoryShare(share=0.9, population_share=0.3, z=1.3),
        "No": CategoryShare(share=0.1, population_share=0.5, z=-0.8),
        "No internet service": CategoryShare(share=0.0, population_share=0.2, z=-0.5),
    }
    numeric = {"spend": NumericProfile(mean=1, median=1, z=0.1)}
    name = _generate_name(numeric, {"security": security}, labels, set(), {}, set())
    assert name == "Online security", name


def test_a_columns_unit_in_brackets_is_left_out_of_names_not_descriptions(
    tmp_path: Path,
) -> None:
    """A mall table's ``Annual Income (k$)`` and ``Spending Score (1-100)`` named segments
    "Very low spending score (1-100), very high annual income (k$)": names leave a column's
    trailing unit or scale out (descriptions keep it), unless two features would then read
    alike; a config's own label is kept as written, and ``Age (years)`` is older/younger."""
    from app.training.profile import name_labels

    rng = np.random.default_rng(3)
    centres = [(25, 26, 79), (45, 26, 20), (43, 55, 50), (33, 87, 82), (41, 88, 17)]
    rows = np.vstack([rng.normal(c, 6, (60, 3)) for c in centres]).round()
    frame = pd.DataFrame(
        rows, columns=["Age (years)", "Annual Income (k$)", "Spending Score (1-100)"]
    )
    frame.insert(0, "CustomerID", [str(i) for i in range(1, len(frame) + 1)])
    frame.to_csv(tmp_path / "mall.csv", index=False)
    raw = {
        "data": {"path": "mall.csv", "id_column": "CustomerID"},
        "features": [{"name": c} for c in frame.columns[1:]],
        "model": {"name": "mall", "k_min": 5, "k_max": 5},
    }
    result = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "store"))
    names = [s.name for s in result.manifest.segments]
    assert not any("(" in name for name in names), names
    assert any("spending score" in name for name in names), names
    assert any(w in " ".join(names).lower() for w in ("older", "younger")), names
    described = " ".join(s.description for s in result.manifest.segments)
    assert "(k$)" in described or "(1-100)" in described, described
    raw["features"] = [
        {"name": "Income (k$)"},
        {"name": "Income (€)"},
        {"name": "Visits (per month)", "label": "visits (per month)"},
        {"name": "Score [1-10]"},
    ]
    config = parse_config(raw, base_dir=tmp_path)
    assert name_labels(config, {f.name: label_of(f.name) for f in config.features}) == {
        "Income (k$)": "income (k$)",
        "Income (€)": "income (€)",
        "Visits (per month)": "visits (per month)",
        "Score [1-10]": "score",
    }


def test_a_segment_lacking_the_unknown_category_is_named_known_not_not_unknown() -> None:
    """A bank table's segments were "No housing, not unknown contact": a segment that lacks
    a feature's ``unknown`` category is named by the feature being known; any other category
    it lacks is still ``not ...``."""
    contact = {
        "unknown": CategoryShare(share=0.0, population_share=0.29, z=-2.0),
        "cellular": CategoryShare(share=0.7, population_share=0.65, z=0.1),
        "telephone": CategoryShare(share=0.3, population_share=0.06, z=0.3),
    }
    housing = {
        "yes": CategoryShare(share=0.0, population_share=0.56, z=-3.0),
        "no": CategoryShare(share=1.0, population_share=0.44, z=3.0),
    }
    labels = {"contact": "contact", "housing": "housing"}
    name = _generate_name({}, {"housing": housing, "contact": contact}, labels, set())
    assert name == "No housing, known contact", name
    contact["Month-to-month"] = contact.pop("unknown")
    name = _generate_name({}, {"housing": housing, "contact": contact}, labels, set())
    assert name == "No housing, not Month-to-month contact", name


def test_a_numeric_code_category_is_named_after_its_feature(tmp_path: Path) -> None:
    """A telecom table's integer-coded ``region`` (1..5) named a segment "Very high dropped
    calls, 4 region": a code reads after its feature, "region 4", as a marketer says it, in
    a cluster's name and description and in a tree leaf's name alike; words stay first
    ("Month-to-month contract")."""
    rng = np.random.default_rng(9)
    n = 1500
    group = rng.choice(3, n)
    frame = pd.DataFrame(
        {
            "subscriber_no": [f"{i:07d}" for i in range(n)],
            "dropped_calls": np.array([1.0, 6.0, 20.0])[group] + rng.normal(0, 0.5, n),
            "region": np.array([1, 4, 5])[group],
        }
    )
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    features = [{"name": "dropped_calls"}, {"name": "region", "type": "categorical"}]
    raw = {
        "data": {"path": str(data), "id_column": "subscriber_no"},
        "features": features,
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    four = next(s for s in m.segments if s.categorical["region"]["4"].share > 0.9)
    assert "region 4" in four.name.lower() and "4 region" not in four.name, four.name
    assert "100% region 4 (" in four.description, four.description
    frame["bought"] = (frame["region"] == 4).astype(int)
    frame.to_csv(data, index=False)
    tree = {
        **raw,
        "features": features[1:],
        "outcomes": ["bought"],
        "model": {"algorithm": "tree", "target": "bought", "k_min": 2, "k_max": 2},
    }
    m = train(parse_config(tree, base_dir=tmp_path), ModelStore(tmp_path / "t")).manifest
    names = sorted(s.name.split(",")[0] for s in m.segments)
    assert names == ["Not region 4", "Region 4"], names


def test_a_time_since_something_keeps_its_upper_case_words(tmp_path: Path) -> None:
    """An upper-case word of three letters or fewer stays in names (``MRR``, docs/training.md);
    a time since one was named "last nps response long ago"."""
    raw = {
        "data": {"path": str(tmp_path / "d.csv")},
        "features": [{"name": "days_since_last_NPS_response"}, {"name": "DaysSinceLastCRMContact"}],
    }
    words = _words(parse_config(raw, base_dir=tmp_path))
    assert words == {
        "days_since_last_NPS_response": Ends(
            "last NPS response long ago", "recent last NPS response"
        ),
        "DaysSinceLastCRMContact": Ends("last CRM contact long ago", "recent last CRM contact"),
    }


def test_features_of_one_family_over_several_windows_are_named_once(tmp_path: Path) -> None:
    """Found by an outside tester: an app's ``sessions_7d`` and ``sessions_30d`` named a
    segment "Very high sessions 30d, very high sessions 7d", the stem said twice: traits that
    differ only in their time window, at the same level, are said once with both windows,
    "Very high sessions (7 and 30 days)". A trained model of an app's users."""
    rng = np.random.default_rng(12)
    n = 2_400
    group = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    weekly = np.array([1.0, 4.0, 15.0])[group] + rng.normal(0, 0.6, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"u{i}" for i in range(n)],
            "sessions_7d": weekly.clip(0),
            "sessions_30d": (weekly * 4 + rng.normal(0, 2, n)).clip(0),
            "spend": np.array([60.0, 10.0, 30.0])[group] + rng.normal(0, 4, n),
        }
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    raw = {
        "data": {"path": str(tmp_path / "d.csv")},
        "features": [{"name": c} for c in ("sessions_7d", "sessions_30d", "spend")],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    segments = train(
        parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")
    ).manifest.segments
    names = [s.name for s in segments]
    busiest = max(segments, key=lambda s: s.numeric["sessions_7d"].z)
    assert busiest.name.startswith("Very high sessions (7 and 30 days)"), names
    for name in names:
        assert name.lower().count("sessions") <= 1, names
    # the descriptions still speak of each feature by its own label
    assert "sessions 7d above average" in busiest.description, busiest.description
    assert "sessions 30d above average" in busiest.description, busiest.description


def test_only_the_same_level_of_one_stem_over_windows_is_said_once() -> None:
    """The rule's edges: two levels stay two traits ("very high sessions 30d, high sessions
    7d" say different things); three windows read "1, 7 and 30 days", the name's lead and
    its traits read whole (no segment leads with it again); other units are spelled out,
    in order of their length ("7 days and 12 months"); "last" stays."""
    labels = {
        "s1": "sessions 1d",
        "s7": "sessions 7d",
        "s30": "sessions 30d",
        "o7": "orders last 7 days",
        "o12": "orders last 12 months",
    }

    def profile(z: float) -> NumericProfile:
        return NumericProfile(mean=1, median=1, z=z)

    numeric = {"s7": profile(0.8), "s30": profile(1.6)}
    name = _generate_name(numeric, {}, labels, set(), {}, set())
    assert name == "Very high sessions 30d, high sessions 7d", name
    numeric = {"s1": profile(1.4), "s7": profile(1.6), "s30": profile(1.5)}
    leads: set[str] = set()
    name = _generate_name(numeric, {}, labels, set(), {}, leads)
    assert name == "Very high sessions (1, 7 and 30 days)", name
    assert leads == {"very high sessions (1, 7 and 30 days)"}
    again = _generate_name(numeric, {}, labels, {name}, {}, leads)
    assert not again.startswith(name + ","), again  # its lead is taken: told apart another way
    numeric = {"o12": profile(-1.2), "o7": profile(-1.3)}
    name = _generate_name(numeric, {}, labels, set(), {}, set())
    assert name == "Very low orders (last 7 days and 12 months)", name
