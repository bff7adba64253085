"""Rule conditions: parsing, type checks, errors, evaluation on rows and frames, first match."""

from __future__ import annotations

import ast
import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import DataError, RuleSyntaxError
from app.training import rules
from app.training.config import RuleConfig
from app.training.rules import (
    And,
    Compare,
    FeatureKinds,
    InList,
    IsMissing,
    Not,
    Or,
    canonical_category,
    compile_rules,
    evaluate_frame,
    evaluate_row,
    first_match_frame,
    first_match_row,
    parse_condition,
    referenced_features,
    to_text,
)

FEATURES: FeatureKinds = {
    "tenure_days": "numeric",
    "monetary": "numeric",
    "churn_risk": "numeric",
    "plan": "categorical",
    "region.code": "categorical",
}


ABSENT = object()


def parse(text: str) -> rules.Condition:
    return parse_condition(text, FEATURES)


def check(text: str, rows: list[dict[str, Any]]) -> list[bool]:
    """The condition on each row, asserting the frame path gives the same answers."""
    condition = parse(text)
    by_row = [evaluate_row(condition, row) for row in rows]
    frame = pd.DataFrame(rows, columns=list(FEATURES))
    assert evaluate_frame(condition, frame).tolist() == by_row
    return by_row


# -- parsing and precedence ---------------------------------------------------------------------
def test_the_documented_examples_parse_to_the_expected_tree() -> None:
    assert parse("tenure_days < 30") == Compare("tenure_days", "<", 30.0)
    assert parse('plan == "enterprise"') == Compare("plan", "==", "enterprise")
    assert parse("plan in [\"pro\", 'team'] and not (monetary >= 1e3 or churn_risk > 0.5)") == And(
        (
            InList("plan", ("pro", "team")),
            Not(Or((Compare("monetary", ">=", 1000.0), Compare("churn_risk", ">", 0.5)))),
        )
    )


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    new, big, free = "tenure_days < 30", "monetary > 100", "plan == 'free'"
    assert parse(f"{new} or {big} and {free}") == Or((parse(new), And((parse(big), parse(free)))))
    assert parse(f"not {new} and {big}") == And((Not(parse(new)), parse(big)))
    # new customer, small spend, paid plan: the grouping decides the answer
    row = {"tenure_days": 3, "monetary": 10, "plan": "pro"}
    assert check(f"{new} or {big} and {free}", [row]) == [True]
    assert check(f"({new} or {big}) and {free}", [row]) == [False]
    assert check(f"not {new} or {big}", [row]) == [False]
    assert check(f"not ({new} or {big})", [row]) == [False]
    assert check(f"not ({new} and {big})", [row]) == [True]


def test_parentheses_group_and_redundant_ones_change_nothing() -> None:
    assert parse("((tenure_days < 30))") == parse("tenure_days < 30")
    assert parse("(tenure_days<30)or(plan=='a')") == parse("tenure_days < 30 or plan == 'a'")
    assert parse("not not plan is missing") == Not(Not(IsMissing("plan")))


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("<", [True, False, False]),
        ("<=", [True, True, False]),
        (">", [False, False, True]),
        (">=", [False, True, True]),
        ("==", [False, True, False]),
        ("!=", [True, False, True]),
    ],
)
def test_every_operator_at_and_either_side_of_its_boundary(op: str, expected: list[bool]) -> None:
    rows = [{"tenure_days": v} for v in (29, 30, 31)]
    assert check(f"tenure_days {op} 30", rows) == expected
    floats = [{"tenure_days": v} for v in (29.999, 30.0, 30.001)]
    assert check(f"tenure_days {op} 30.0", floats) == expected


@pytest.mark.parametrize(
    ("literal", "value"),
    [("-1.5e2", -150.0), ("1e3", 1000.0), ("1E+2", 100.0), (".5", 0.5), ("-0.25", -0.25)],
)
def test_number_literals(literal: str, value: float) -> None:
    assert parse(f"monetary == {literal}") == Compare("monetary", "==", value)
    rows = [{"monetary": value}, {"monetary": value + 1}]
    assert check(f"monetary >= {literal} and monetary <= {literal}", rows) == [True, False]


def test_in_and_not_in() -> None:
    rows = [{"plan": p} for p in ("pro", "team", "free", None)]
    assert check("plan in ['pro', \"team\"]", rows) == [True, True, False, False]
    assert check("plan not in ['pro', \"team\"]", rows) == [False, False, True, False]
    numbers = [{"tenure_days": v} for v in (1, 2.0, 3, None)]
    assert check("tenure_days in [1, 2]", numbers) == [True, True, False, False]
    assert check("tenure_days not in [1, 2]", numbers) == [False, False, True, False]


def test_is_missing_and_is_not_missing() -> None:
    rows = [{"plan": "a", "monetary": 1.0}, {"plan": None, "monetary": math.nan}]
    assert check("plan is missing", rows) == [False, True]
    assert check("plan is not missing", rows) == [True, False]
    assert check("monetary is missing", rows) == [False, True]
    assert check("monetary is not missing", rows) == [True, False]


@pytest.mark.parametrize(
    "text",
    [
        "monetary < 3",
        "monetary >= 3",
        "monetary == 3",
        "monetary != 3",
        "monetary in [3]",
        "monetary not in [3]",
        "plan == 'a'",
        "plan != 'a'",
        "plan in ['a']",
        "plan not in ['a']",
        "monetary is not missing",
        "plan is not missing",
    ],
)
@pytest.mark.parametrize("missing", [None, math.nan, pd.NA, ABSENT])
def test_a_missing_value_fails_everything_but_is_missing(text: str, missing: Any) -> None:
    row = {} if missing is ABSENT else {"monetary": missing, "plan": missing}
    condition = parse(text)
    assert evaluate_row(condition, row) is False
    assert evaluate_row(Not(condition), row) is True  # not negates the result
    frame = pd.DataFrame({"monetary": [np.nan], "plan": [None]})
    assert evaluate_frame(condition, frame).tolist() == [False]


def test_is_missing_is_true_for_every_kind_of_missing() -> None:
    for missing in (None, math.nan, np.float32("nan"), pd.NA):
        assert evaluate_row(parse("plan is missing"), {"plan": missing})
        assert evaluate_row(parse("monetary is missing"), {"monetary": missing})
    assert evaluate_row(parse("plan is missing"), {})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Pro", "Pro"),
        ("", ""),
        (True, "true"),
        (np.bool_(False), "false"),
        (3, "3"),
        (np.int64(-3), "-3"),
        (3.0, "3"),
        (np.float32(2.5), "2.5"),
        (2.5, "2.5"),
        (None, None),
        (math.nan, None),
        (pd.NA, None),
    ],
)
def test_canonical_category(value: object, expected: str | None) -> None:
    assert canonical_category(value) == expected


def test_categorical_values_compare_as_canonical_strings() -> None:
    rows = [{"plan": v} for v in (3, 3.0, "3", "3.0", True, "true", 2.5)]
    assert check("plan == 3", rows) == [True, True, True, False, False, False, False]
    assert check("plan == '3'", rows) == check("plan == 3.0", rows)
    assert check("plan == true", rows) == [False, False, False, False, True, True, False]
    assert check("plan in [2.5, false]", rows) == [False] * 6 + [True]
    assert check("plan == 'pro'", [{"plan": "Pro"}, {"plan": "pro "}]) == [False, False]
    # 1, 1.0 and True hash alike; an object column holding all three must not merge them
    mixed = [{"plan": v} for v in (1, True, 1.0, "1", "true", None)]
    assert check("plan == 1", mixed) == [True, False, True, True, False, False]
    assert check("plan in [true]", mixed) == [False, True, False, False, True, False]


@pytest.mark.parametrize(
    ("values", "dtype", "text"),
    [
        (["a", None, "3", "a"], "category", "plan in ['a', 3]"),
        (["a", None, "3", "a"], "string", "plan != 'a'"),
        ([True, None, False, True], "boolean", "plan == true"),
        ([1, 2, 3, 4], "int64", "plan in [1, 4.0]"),
        ([1.0, None, 2.5, -0.0], "float64", "plan in [1, 2.5, 0]"),
        ([1, None, 3, 4], "Int64", "tenure_days >= 3 or tenure_days is missing"),
        ([0.5, None, 2.0, 8.0], "float32", "tenure_days != 2"),
        ([True, False, None, True], "object", "tenure_days == 1"),
    ],
)
def test_frame_agrees_with_rows_for_every_column_dtype(
    values: list[Any], dtype: str, text: str
) -> None:
    column = "plan" if "plan" in text else "tenure_days"
    frame = pd.DataFrame({column: pd.Series(values, dtype=dtype)})
    condition = parse(text)
    expected = [evaluate_row(condition, {column: v}) for v in values]
    assert evaluate_frame(condition, frame).tolist() == expected
    assert any(expected) and not all(expected)


def test_quoted_strings_with_escapes_and_spaces() -> None:
    assert parse("plan == 'Pay as you go'") == Compare("plan", "==", "Pay as you go")
    assert parse(r"plan == 'O\'Brien & \"co\"'") == Compare("plan", "==", 'O\'Brien & "co"')
    assert parse(r'plan == "say \"hi\""') == Compare("plan", "==", 'say "hi"')
    assert parse(r'plan == "back\\slash"') == Compare("plan", "==", "back\\slash")
    assert parse("plan == 'and or not ( ) [ ]'") == Compare("plan", "==", "and or not ( ) [ ]")
    assert check("plan == 'O\\'Brien'", [{"plan": "O'Brien"}, {"plan": "OBrien"}]) == [True, False]


def test_feature_names_may_hold_dots() -> None:
    assert check("region.code == 'eu'", [{"region.code": "eu"}]) == [True]


def test_a_name_that_is_no_plain_word_is_written_in_backticks() -> None:
    """An audit's European export had the columns `Anzahl Besuche`, `Région` and `Umsatz (€)`:
    no rule could name them (the error listed the very name it refused), and a tree's leaf
    rules wrote them bare, a text no [[rules]] entry could take back."""
    features: FeatureKinds = {"Anzahl Besuche": "numeric", "Région": "categorical", "in": "numeric"}
    text = "`Anzahl Besuche` < 2 and `Région` != 'Süd' or `in` is missing"
    condition = parse_condition(text, features)
    assert to_text(condition) == '`Anzahl Besuche` < 2 and `Région` != "Süd" or `in` is missing'
    assert parse_condition(to_text(condition), features) == condition
    rows = [{"Anzahl Besuche": 1, "Région": "Nord", "in": 3}, {"Anzahl Besuche": 5, "in": 3}]
    assert [evaluate_row(condition, row) for row in rows] == [True, False]
    for written, says in [
        ("Anzahl Besuche < 2", "unknown feature 'Anzahl' .*; write `Anzahl Besuche`, in backticks"),
        ("Région == 'Süd'", "unknown feature 'R' .*; write `Région`, in backticks"),
        ("`Anzahl Besuche < 2", "a name in backticks is not closed"),
        ("`` < 2", "a name in backticks is not closed"),
    ]:
        with pytest.raises(RuleSyntaxError, match=says):
            parse_condition(written, features)
    with pytest.raises(RuleSyntaxError) as caught:  # a plain name is no hint for another word
        parse_condition("Anzahlung < 2", {"Anzahl": "numeric"})
    assert str(caught.value).endswith("unknown feature 'Anzahlung' (declared: Anzahl)")


def test_referenced_features() -> None:
    text = "plan == 'a' or not (monetary > 1 and plan is missing) or tenure_days in [1]"
    assert referenced_features(parse(text)) == {"plan", "monetary", "tenure_days"}


# -- errors -------------------------------------------------------------------------------------
def test_the_error_names_the_problem_and_where_it_is() -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse("tenure_days <")
    assert str(caught.value) == (
        "rule condition 'tenure_days <': expected a value after '<' at position 13"
    )
    with pytest.raises(RuleSyntaxError) as caught:
        parse("tenur_days < 30")
    assert str(caught.value) == (
        "rule condition 'tenur_days < 30': unknown feature 'tenur_days' "
        "(declared: tenure_days, monetary, churn_risk, plan, region.code)"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the condition is empty"),
        ("   ", "the condition is empty"),
        ("spend > 3", "unknown feature 'spend'"),
        ("plan < 'a'", "'<' needs a numeric feature; 'plan' is categorical at position 5"),
        ("plan >= 3", "'>=' needs a numeric feature"),
        ("tenure_days == 'a'", "'tenure_days' is numeric: expected a number, found 'a'"),
        ("tenure_days != true", "'tenure_days' is numeric: expected a number, found true"),
        ("tenure_days in [1, 'a']", "'tenure_days' is numeric: expected a number"),
        ("plan ==", "expected a value after '==' at position 7"),
        ("plan == and", "expected a value after '==', found 'and' at position 8"),
        ("plan == True", "expected a value after '==', found 'True'"),
        ("tenure_days < 3 and", "expected a condition (a feature name, 'not' or '(') after 'and'"),
        ("tenure_days < 3 or or plan is missing", "after 'or', found 'or' at position 19"),
        ("and plan is missing", "expected a condition (a feature name, 'not' or '('), found 'and'"),
        ("not", "expected a condition"),
        ("in == 'a'", "expected a condition"),
        ("(tenure_days < 3", "unbalanced parenthesis: the '(' at position 0 is not closed"),
        ("((tenure_days < 3)", "unbalanced parenthesis: the '(' at position 0 is not closed"),
        ("tenure_days < 3)", "unbalanced parenthesis: ')' without a matching '(' at position 15"),
        ("(tenure_days < 3 plan", "expected 'and', 'or' or ')' after '3', found 'plan'"),
        ("tenure_days < 3 plan", "unexpected 'plan' after a complete condition at position 16"),
        ("tenure_days < 3 AND plan == 'a'", "unexpected 'AND' after a complete condition"),
        ("tenure_days < 3 ;", "unexpected character ';' at position 16"),
        ("plan == pro", "found 'pro' (quote text: 'pro') at position 8"),
        ("plan = 'a'", "unexpected character '=' (compare with ==) at position 5"),
        ("plan == 'a", "unterminated string at position 8"),
        ("tenure_days < 3abc", "malformed number at position 14"),
        ("tenure_days < 1.2.3", "malformed number at position 14"),
        ("tenure_days < 1e999", "number 1e999 is out of range at position 14"),
        ("plan", "expected an operator (<, <=, >, >=, ==, !=, in, not in, is) after 'plan'"),
        ("plan not == 'a'", "expected 'in' after 'not', found '=='"),
        ("plan is", "expected 'missing' after 'is'"),
        ("plan is not present", "expected 'missing' after 'not', found 'present'"),
        ("plan in 'a'", "expected '[' after 'in', found \"'a'\""),
        ("plan in []", "expected a value after '[', found ']'"),
        ("plan in ['a' 'b']", "expected ',' or ']' after \"'a'\", found \"'b'\""),
        ("plan in ['a',]", "expected a value after ',', found ']'"),
    ],
)
def test_syntax_errors_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse(text)
    assert str(caught.value).startswith(f"rule condition {text!r}: ")
    assert problem in str(caught.value)


def test_length_limit() -> None:
    clause = " or tenure_days < 3"
    fits = "tenure_days < 3" + clause * ((2_000 - 15) // len(clause))
    assert len(fits) <= 2_000
    assert isinstance(parse(fits), Or)
    with pytest.raises(RuleSyntaxError, match="characters long; the limit is 2,000"):
        parse(fits + clause)


@pytest.mark.parametrize(("opening", "closing"), [("(", ")"), ("not ", ""), ("not (", ")")])
def test_nesting_limit(opening: str, closing: str) -> None:
    def nested(depth: int) -> str:
        levels = depth if opening != "not (" else depth // 2
        return opening * levels + "tenure_days < 3" + closing * levels

    parse(nested(50))
    with pytest.raises(RuleSyntaxError, match="nesting deeper than 50 levels"):
        parse(nested(52))
    with pytest.raises(RuleSyntaxError, match="nesting deeper than 50 levels"):
        parse("(" * 1_000)  # stops at the limit, long before Python's recursion limit


def test_code_in_a_condition_is_never_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(os, "system", calls.append)
    attempts = [
        "__import__('os').system('x') == 1",
        "monetary == __import__('os').system('x')",
        "plan == 'a' or exec('import os') == 1",
        "plan == \"\" + __import__('os').system('x')",
    ]
    for features in (FEATURES, {**FEATURES, "__import__": "numeric", "exec": "categorical"}):
        for text in attempts:
            with pytest.raises(RuleSyntaxError):
                parse_condition(text, features)
    assert calls == []


def test_the_module_never_calls_eval_exec_or_compile() -> None:
    files = sorted(Path(rules.__file__).parent.glob("*.py"))  # every module of the package
    assert {f.name for f in files} >= {"__init__.py", "parser.py", "conditions.py"}
    called = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name):
                    called.add(func.id)
                elif isinstance(func, ast.Attribute):
                    owner = func.value.id if isinstance(func.value, ast.Name) else "?"
                    called.add(f"{owner}.{func.attr}")
    forbidden = {"eval", "exec", "compile", "__import__", "ast.literal_eval", "builtins.eval"}
    assert not called & forbidden
    assert "re.compile" in called  # the walk does see attribute calls


# -- canonical text -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("tenure_days<30", "tenure_days < 30"),
        ("monetary >= 1e3", "monetary >= 1000"),
        ("monetary > -1.5e2", "monetary > -150"),
        ("churn_risk > .5", "churn_risk > 0.5"),
        ("monetary < 1e20", "monetary < 1e+20"),
        ("plan == 'a'", 'plan == "a"'),
        ("plan == 3.0", 'plan == "3"'),
        (r"plan == 'say \"hi\" \\ bye'", r'plan == "say \"hi\" \\ bye"'),
        ("plan not in ['a' , true]", 'plan not in ["a", "true"]'),
        ("not(plan is missing)", "not plan is missing"),
        ("plan is not missing", "plan is not missing"),
        (
            "(plan == 'a' or plan == 'b') and monetary > 1",
            '(plan == "a" or plan == "b") and monetary > 1',
        ),
        (
            "plan == 'a' or (plan == 'b' and monetary > 1)",
            'plan == "a" or plan == "b" and monetary > 1',
        ),
        (
            "plan == 'a' and (plan == 'b' and monetary > 1)",
            'plan == "a" and (plan == "b" and monetary > 1)',
        ),
        ("not (plan == 'a' or not plan == 'b')", 'not (plan == "a" or not plan == "b")'),
    ],
)
def test_to_text_is_canonical_and_round_trips(text: str, canonical: str) -> None:
    condition = parse(text)
    assert to_text(condition) == canonical
    assert parse(canonical) == condition


# -- rule segments ------------------------------------------------------------------------------
RULES = [
    RuleConfig(name="New", when=" tenure_days < 30 ", action="Send the onboarding series"),
    RuleConfig(name="Big spenders", when="monetary > 1000", description="Account managed"),
    RuleConfig(name="Free", when="plan == 'free'"),
]


def test_compile_rules_keeps_order_text_description_and_action() -> None:
    compiled = compile_rules(RULES, FEATURES)
    assert [r.name for r in compiled] == ["New", "Big spenders", "Free"]
    assert compiled[0].text == "tenure_days < 30"
    assert compiled[0].condition == parse("tenure_days < 30")
    assert (compiled[0].action, compiled[1].description, compiled[2].action) == (
        "Send the onboarding series",
        "Account managed",
        None,
    )
    assert pickle.loads(pickle.dumps(compiled)) == compiled  # the model store pickles them


def test_compile_rules_names_the_broken_rule() -> None:
    broken = [*RULES, RuleConfig(name="Broken", when="tenure_days <")]
    with pytest.raises(RuleSyntaxError) as caught:
        compile_rules(broken, FEATURES)
    assert str(caught.value) == (
        "rule 'Broken': rule condition 'tenure_days <': expected a value after '<' at position 13"
    )


def test_the_first_matching_rule_wins() -> None:
    compiled = compile_rules(RULES, FEATURES)
    rows: list[dict[str, Any]] = [
        {"tenure_days": 3, "monetary": 5000, "plan": "free"},  # all three match
        {"tenure_days": 90, "monetary": 5000, "plan": "free"},  # big and free
        {"tenure_days": 90, "monetary": 10, "plan": "free"},
        {"tenure_days": 90, "monetary": 10, "plan": "pro"},  # none
        {"tenure_days": None, "monetary": None, "plan": None},  # none: all missing
    ]
    expected = [0, 1, 2, -1, -1]
    assert [first_match_row(compiled, row) for row in rows] == expected
    frame = pd.DataFrame(rows)
    assert first_match_frame(compiled, frame).tolist() == expected
    assert first_match_frame(compiled, frame).dtype == np.int64
    reordered = compile_rules(RULES[::-1], FEATURES)
    assert [first_match_row(reordered, row) for row in rows] == [0, 0, 0, -1, -1]
    assert first_match_frame(reordered, frame).tolist() == [0, 0, 0, -1, -1]
    assert first_match_frame([], frame).tolist() == [-1] * 5


def test_a_frame_without_a_rule_column_is_refused() -> None:
    frame = pd.DataFrame({"tenure_days": [1, 2]})
    for text in ("plan == 'a'", "plan is missing", "monetary > 1"):
        with pytest.raises(DataError, match="which the data lacks"):
            evaluate_frame(parse(text), frame)


# -- the frame and the row agree ----------------------------------------------------------------
NUMERIC = ["tenure_days", "monetary"]
CATEGORICAL = ["plan", "region.code"]
NUMBER_LITERALS = ["0", "1", "-1", "2.5", "3", "-1.5e0", ".5", "1e0"]
CATEGORY_LITERALS = ['"a"', "'b'", '"A b"', '""', "3", "3.0", "'3'", "true", "false", "2.5"]

numbers = st.one_of(
    st.none(),
    st.just(math.nan),
    st.integers(-3, 3),
    st.sampled_from([0.5, 2.5, -1.5, 1.0, -0.0, math.inf]),
    st.booleans(),
)
categories = st.one_of(
    st.none(),
    st.just(math.nan),
    st.sampled_from(["a", "b", "A b", "", "3", "true", "2.5"]),
    st.integers(-3, 3),
    st.sampled_from([3.0, 2.5, -0.0]),
    st.booleans(),
)
strings_only = st.one_of(st.none(), st.sampled_from(["a", "b", "A b", "", "3", "true"]))


def _comparisons() -> st.SearchStrategy[str]:
    numeric = st.builds(
        "{} {} {}".format,
        st.sampled_from(NUMERIC),
        st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
        st.sampled_from(NUMBER_LITERALS),
    )
    categorical = st.builds(
        "{} {} {}".format,
        st.sampled_from(CATEGORICAL),
        st.sampled_from(["==", "!="]),
        st.sampled_from(CATEGORY_LITERALS),
    )
    in_list = st.one_of(
        st.tuples(st.sampled_from(NUMERIC), st.lists(st.sampled_from(NUMBER_LITERALS), min_size=1)),
        st.tuples(
            st.sampled_from(CATEGORICAL), st.lists(st.sampled_from(CATEGORY_LITERALS), min_size=1)
        ),
    ).flatmap(
        lambda pair: st.sampled_from(["in", "not in"]).map(
            lambda op: f"{pair[0]} {op} [{', '.join(pair[1][:4])}]"
        )
    )
    missing = st.builds(
        "{} is {}".format,
        st.sampled_from(NUMERIC + CATEGORICAL),
        st.sampled_from(["missing", "not missing"]),
    )
    return st.one_of(numeric, categorical, in_list, missing)


conditions = st.recursive(
    _comparisons(),
    lambda inner: st.one_of(
        inner.map("not ({})".format),
        st.builds("({}) and ({})".format, inner, inner),
        st.builds("{} or {}".format, inner, inner),
        st.builds("{} and {} or not {}".format, inner, inner, inner),
    ),
    max_leaves=8,
)
customers = st.lists(
    st.fixed_dictionaries(
        {
            "tenure_days": numbers,
            "monetary": numbers,
            "plan": categories,
            "region.code": strings_only,
        }
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(rows=customers, texts=st.lists(conditions, min_size=1, max_size=4))
def test_frame_and_row_evaluation_agree(rows: list[dict[str, Any]], texts: list[str]) -> None:
    frame = pd.DataFrame(rows, columns=NUMERIC + CATEGORICAL)
    segments = compile_rules(
        [RuleConfig(name=f"r{i}", when=text) for i, text in enumerate(texts)], FEATURES
    )
    for segment in segments:
        by_row = [evaluate_row(segment.condition, row) for row in rows]
        assert evaluate_frame(segment.condition, frame).tolist() == by_row, segment.text
        assert parse(to_text(segment.condition)) == segment.condition
    by_row_slots = [first_match_row(segments, row) for row in rows]
    assert first_match_frame(segments, frame).tolist() == by_row_slots
