"""A path the user names that cannot be written or read as asked is one ``error:`` line.

A hostile audit ran every ``segments`` command with a folder where a file goes (and a file
where a folder goes): ``openapi --out``, ``keys create --append``, ``train --config`` and
``example-data --out`` ended in a Python traceback. Run as a user runs them: the installed
command, in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SEGMENTS = Path(sys.executable).parent / "segments"


@pytest.mark.parametrize(
    "args",
    [
        ["openapi", "--out", "{folder}"],
        ["keys", "create", "--scope", "read", "--append", "{folder}"],
        ["train", "--config", "{folder}"],
        ["example-data", "--out", "{file}"],
    ],
    ids=["openapi", "keys", "train", "example-data"],
)
def test_a_path_of_the_wrong_kind_is_one_error_line(tmp_path: Path, args: list[str]) -> None:
    folder, file = tmp_path / "folder", tmp_path / "file"
    folder.mkdir()
    file.write_text("kept\n")
    command = [str(SEGMENTS), *(a.format(folder=folder, file=file) for a in args)]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "Traceback" not in said, said
    (line,) = [line for line in said.splitlines() if line.strip()]
    assert line.startswith("error: "), line
    assert str(folder if "{folder}" in args else file) in line, line
    assert file.read_text() == "kept\n" and not list(folder.iterdir())
