"""Every ``segments`` command in the README's and docs/'s shell blocks runs as written.

A new user copies these lines after ``./scripts/run``. Walking the docs literally found
commands on files nothing had made (``--config tiers.toml``, ``--input customers.parquet``,
``--data data/customers-2026-12.csv``, ``--input transactions.csv`` where the example log is
``data/transactions.csv``): each failed with "not found". Here each command must name a
real subcommand and real options (the installed CLI's own tree), and every file it reads
must be in the repository or among what ``segments example-data --out data`` writes. A
command the prose names in a code span (`segments customers rescore [--model NAME]`) must
take the options it is shown with.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
import typer

from app.cli.main import app
from app.datasets import write_example_data
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# options whose value is a file the command reads
READS = {"--config", "--input", "--data"}
# files a doc itself has the user write first, and where it does
WRITTEN_BY_THE_DOCS = {
    "churn.toml": "README 'Your own data' toml block (tests/training/test_readme_config.py)",
}


def _commands() -> list[tuple[str, str]]:
    """(doc name, command line) of each ``segments`` line in a bash/sh block."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", doc.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #", 1)[0].split(";", 1)[0].strip()
                if re.match(r"(\.venv/bin/)?segments ", line):
                    found.append((doc.name, line))
    return found


COMMANDS = _commands()


@pytest.fixture(scope="module")
def example_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("data")
    return {f"data/{path.name}" for path in write_example_data(out, n_customers=100).values()}


def test_the_docs_have_commands() -> None:
    docs = {doc for doc, _ in COMMANDS}
    assert {"README.md", "drift.md", "events.md", "several-models.md"} <= docs, docs


@pytest.mark.parametrize(("doc", "line"), COMMANDS, ids=[f"{d}:{c}" for d, c in COMMANDS])
def test_a_documented_command_exists_and_reads_files_that_exist(
    doc: str, line: str, example_files: set[str]
) -> None:
    # the README's way: ./scripts/install puts `segments` in .venv/bin, not on the PATH
    assert line.startswith(".venv/bin/segments "), f"{doc}: `{line}`: not found on the PATH"
    words = shlex.split(line.replace("[", " ").replace("]", " "))[1:]  # [--x Y]: optional
    command: Any = typer.main.get_command(app)  # typer's own click: no isinstance
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        name = words.pop(0)
        assert name in command.commands, f"{doc}: `{line}`: no command {name!r}"
        command = command.commands[name]
    assert not hasattr(command, "commands"), f"{doc}: `{line}` names no command"
    options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    for i, word in enumerate(words):
        if not word.startswith("--"):
            continue
        assert word in options, f"{doc}: `{line}`: {word} is not an option of it"
        if word in READS and not words[i + 1].isupper():  # FILE: a placeholder
            path = words[i + 1]
            assert (
                (ROOT / path).is_file() or path in example_files or path in WRITTEN_BY_THE_DOCS
            ), f"{doc}: `{line}` reads {path}, which neither the repository nor example-data has"


def _spans() -> list[tuple[str, str]]:
    """(doc name, span) of each inline `segments ...` code span of the prose."""
    return [
        (doc.name, span)
        for doc in DOCS
        for span in sorted(set(re.findall(r"`((?:\.venv/bin/)?segments [^`]+)`", doc.read_text())))
    ]


SPANS = _spans()


def _resolve(words: list[str]) -> list[Any]:
    """The commands ``words`` name (``keys list|revoke``: both), options left in ``words``."""
    commands: list[Any] = [typer.main.get_command(app)]
    while all(hasattr(c, "commands") for c in commands) and words and words[0][0] != "-":
        names = words.pop(0).split("|")
        assert all(n in commands[0].commands for n in names), names
        commands = [commands[0].commands[n] for n in names]
    return commands


@pytest.mark.parametrize(("doc", "span"), SPANS, ids=[f"{d}:{s}" for d, s in SPANS])
def test_a_command_named_in_the_prose_has_the_options_it_is_shown_with(doc: str, span: str) -> None:
    words = shlex.split(re.sub(r"[\[\]]", " ", span))[1:]  # [--x Y]: optional
    for command in _resolve(words):
        options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        unknown = [w for w in words if w.startswith("--") and w.split("=")[0] not in options]
        assert not unknown, f"{doc}: `{span}`: {unknown} are not options of {command.name}"


def _curl_calls() -> list[tuple[str, str]]:
    """(doc name, call) of each curl call in a bash/sh block, continuation lines joined."""
    calls = []
    for doc in DOCS:
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", doc.read_text(), re.S):
            joined = block.replace("\\\n", " ")
            calls += [
                (doc.name, c) for c in re.findall(r"^curl .*?(?=^\S|\Z)", joined, re.S | re.M)
            ]
    return calls


CURLS = _curl_calls()


@pytest.mark.parametrize(("doc", "call"), CURLS, ids=[f"{d}:{c[:60]}" for d, c in CURLS])
def test_a_documented_curl_call_sends_json_to_a_route_of_the_contract(doc: str, call: str) -> None:
    """A body of ``{...}`` (several-models.md had one) is a 422 for whoever pastes it, and
    a ``$ADMIN_KEY`` (webhooks.md's) a 401: the key ``./scripts/run`` prints is ``$KEY``."""
    assert set(re.findall(r"\$([A-Z_]+)", call)) <= {"KEY"}, f"{doc}: `{call}`"
    words = shlex.split(re.sub(r"\s+#[^']*$", "", call.strip()))  # a comment after the call
    url = next(w for w in words if w.startswith(("localhost", "http")))
    path = "/" + url.removeprefix("http://").split("/", 1)[1].split("?")[0]
    contract = json.loads((ROOT / "openapi" / "openapi.json").read_text())["paths"]
    routes = [re.sub(r"\{[^}]+\}", "[^/]+", route) for route in contract]
    assert any(re.fullmatch(route, path) for route in routes), f"{doc}: {path} is no route"
    if "-d" in words:
        json.loads(words[words.index("-d") + 1])  # raises, naming the place, unless JSON
