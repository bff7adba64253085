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


@pytest.mark.parametrize("args", [["openapi", "--out", "spec.json"], ["train", "--config", "."]])
def test_the_command_leaves_nothing_for_the_exit_to_collect(
    tmp_path: Path, args: list[str]
) -> None:
    """``segments`` freezes the garbage collector on the way out, after a command that worked
    and one that failed: the interpreter's exit then skips its full collections over every
    object the libraries made (0.5-0.7 s after a 1M-customer training), and a written file is
    whole."""
    script = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count(), file=sys.stderr))\n"
        "from app.cli.main import main\n"
        f"sys.argv = ['segments', *{args!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    frozen = [line for line in done.stderr.splitlines() if line.startswith("frozen ")]
    assert frozen and int(frozen[0].split()[1]) > 10_000, done.stderr
    if args[0] == "openapi":
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "spec.json").read_text().rstrip().endswith("}")
    else:
        assert done.returncode == 1 and "error: " in done.stderr, done.stderr
