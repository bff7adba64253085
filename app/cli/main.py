"""The ``segments`` command line: train, inspect and promote models, tag files, serve."""

from __future__ import annotations

import gc
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from app.cli import drift as drift_cli
from app.cli import history as history_cli
from app.cli import keys as keys_cli
from app.cli import models as models_cli
from app.cli.common import (
    STORE_OPTION,
    default_model,
    fail_on_error,
    model_option,
    not_promoted_note,
    print_manifest_summary,
    store_at,
)
from app.registry.overrides import segment_names
from app.training.config import SEED_MAX, load_config
from app.words import counted

if TYPE_CHECKING:
    from app.registry.store import ModelStore
    from app.settings import Settings

app = typer.Typer(
    name="segments",
    help="Real-time customer segmentation: train, version, promote and assign segments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(models_cli.app, name="models")
app.add_typer(keys_cli.app, name="keys")
history_cli.register(app)
drift_cli.register(app)
console = Console(stderr=True, emoji=False)


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="training config (TOML)")],
    store: STORE_OPTION = None,
    data: Annotated[Path | None, typer.Option(help="override the config's data path")] = None,
    model_name: Annotated[
        str | None, typer.Option("--model", help="override model.name", callback=model_option)
    ] = None,
    seed: Annotated[
        int | None, typer.Option(min=0, max=SEED_MAX, help="override model.seed")
    ] = None,
    promote: Annotated[bool, typer.Option(help="promote the new version")] = False,
) -> None:
    """Fit a segmentation model and write a new version to the model store."""
    from app.training.job import train as run_training

    with fail_on_error(console):
        cfg = load_config(config)
        updates: dict[str, object] = {}
        if model_name or seed is not None:
            model_updates: dict[str, object] = {"name": model_name or cfg.model.name}
            if seed is not None:
                model_updates["seed"] = seed
            updates["model"] = cfg.model.model_copy(update=model_updates)
        if data is not None:
            updates["data"] = cfg.data.model_copy(update={"path": data.resolve()})
        if updates:
            cfg = cfg.model_copy(update=updates)
        model_store = store_at(store)
        with console.status("training") as status:
            result = run_training(
                cfg,
                model_store,
                promote=promote,
                on_step=lambda step: status.update(f"training: {step}…"),
            )
        manifest = result.manifest
        served = segment_names(manifest, model_store.root / manifest.model_name)
        print_manifest_summary(manifest, model_store.promoted(manifest.model_name), served)
        drift_cli.print_convergence(manifest)
        folder = model_store.version_dir(manifest.model_name, manifest.version)
        console.print(f"report: {folder / 'report.html'}", markup=False, soft_wrap=True)
        if result.promoted:
            console.print(f"[green]promoted[/] {manifest.model_name} {manifest.version}")
        elif model_store.promoted(manifest.model_name) != manifest.version:
            # (a new user's next `segments assign` answered "no promoted version")
            console.print(
                not_promoted_note(manifest.model_name, manifest.version, store),
                markup=False,
                soft_wrap=True,
                highlight=False,
            )
        typer.echo(manifest.version)


@app.command()
def assign(
    input: Annotated[Path, typer.Option("--input", "-i", help="customer file (CSV or Parquet)")],
    output: Annotated[
        Path | None, typer.Option("--output", "--out", "-o", help="CSV or Parquet to write")
    ] = None,
    store: STORE_OPTION = None,
    model_name: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="default: SEGMENTS_MODEL_NAME, else the store's only model",
            callback=model_option,
        ),
    ] = None,
    version: Annotated[str | None, typer.Option(help="default: the promoted version")] = None,
    id_column: Annotated[
        str | None,
        typer.Option(help="customer id column; default: the one the version was trained with"),
    ] = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(min=1, help="rows per chunk (default 100,000; a log's customers: 10,000)"),
    ] = None,
    record: Annotated[
        bool, typer.Option("--record", help="record every assignment in Redis (history)")
    ] = False,
    run_id: Annotated[str | None, typer.Option(help="rerun this recording run")] = None,
    resume: Annotated[str | None, typer.Option(help="finish this recording run")] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            help="a transaction log's reference date (exclusive); default: the day after "
            "its last event",
        ),
    ] = None,
) -> None:
    """Tag every customer of a file with its segment id and name (streams in chunks);
    with --record, record each assignment in Redis as the service does. For a model trained
    on a transaction log, the input is such a log: features are derived as training does."""
    from app.batch import assign_file, check_output, kinds_in_words
    from app.errors import DataError, StoreError
    from app.events.command import (
        assign_log,
        refuse_feature_as_id,
        trained_id_column,
        trained_on_log,
        with_log_hint,
    )
    from app.settings import get_settings

    with fail_on_error(console):
        check_output(input, output)  # before anything is written
        model_store = store_at(store)
        # a rerun or a resumed run is of the model its run file names (the resume command a
        # failed run prints names it too; another --model is refused when the run is loaded)
        name = model_name or _run_model(get_settings().data_dir / "runs", resume or run_id)
        name = name or default_model(model_store, get_settings().model_name)
        resuming = resume is not None or run_id is not None  # (the run file names a version)
        if version is None and not resuming and model_store.promoted(name) is None:
            raise StoreError(
                model_store.no_promoted_version(
                    name, "run `segments models promote`, or name one with --version"
                )
            )
        if id_column is not None:
            refuse_feature_as_id(model_store, name, version, id_column)
        id_column = id_column or trained_id_column(model_store, name, version)
        record = record or resuming
        if trained_on_log(model_store, name, version):
            day = None if as_of is None else as_of.date()
            assign_log(
                model_store,
                name,
                version,
                input,
                output,
                as_of=day,
                record=record,
                id_column=id_column,
                console=console,
                run_id=run_id,
                resume=resume,
                chunk_size=chunk_size,
            )
            return
        if as_of is not None:
            console.print(
                f"[red]error:[/] --as-of is a transaction log's reference date; {escape(name)} "
                "was trained on a table, whose features are read from the file as written: "
                "leave --as-of out",
                soft_wrap=True,
            )
            raise typer.Exit(2)
        chunk_size = chunk_size or 100_000
        if output is None and not record:
            console.print("[red]error:[/] --output is required (or --record)")
            raise typer.Exit(2)
        try:
            if record:
                _record(input, output, store, name, version, id_column, chunk_size, run_id, resume)
                return
            assert output is not None
            loaded = model_store.load(name, version)
            done = assign_file(
                loaded,
                input,
                output,
                id_column=id_column,
                chunk_size=chunk_size,
                max_id=get_settings().max_id_length,
            )
        except DataError as error:
            raise with_log_hint(error, model_store, name, input) from None
        console.print(
            f"tagged {counted(done.rows, 'customer')} with {name} {loaded.manifest.version} "
            f"-> {output}" + ("" if done.rows or done.rejected else " (the input has no rows)"),
            markup=False,
        )
        if done.rejects is not None:
            console.print(
                f"[yellow]rejected {counted(done.rejected, 'row')}[/]: "
                f"{escape(kinds_in_words(done.kinds))}"
                f" (row numbers and reasons in {escape(str(done.rejects))})",
                soft_wrap=True,
            )
        for line in done.unseen:
            console.print(f"[yellow]note:[/] {escape(line)}", soft_wrap=True)


def _run_model(runs: Path, run_id: str | None) -> str | None:
    """The model of run ``run_id``'s file, if ``run_id`` is a run id and there is such a file
    (an id that is not one is refused, in words, where the run is planned)."""
    if not run_id:
        return None
    from app.history.records import check_run_id
    from app.recording.state import RunState

    try:
        state = RunState.load(runs, check_run_id(run_id))
    except ValueError:
        return None
    return state.model if state else None


def _record(
    source: Path,
    output: Path | None,
    store: Path | None,
    model_name: str,
    version: str | None,
    id_column: str,
    chunk_size: int,
    run_id: str | None,
    resume: str | None,
) -> None:
    _prescan(store_at(store), model_name, version, source, id_column, resume)
    from app.recording import RunRequest, record_file
    from app.redis_client import namespace_note
    from app.settings import get_settings

    settings = get_settings()
    runs = settings.data_dir / "runs"
    request = RunRequest(source, output, model_name, runs, id_column, chunk_size, run_id, resume)
    if note := namespace_note(settings, model_name):
        console.print(note, markup=False, soft_wrap=True)
    record_file(store_at(store), version, request, settings.history_config(model_name), console)


def _prescan(
    store: ModelStore,
    model_name: str,
    version: str | None,
    source: Path,
    id_column: str,
    resume: str | None,
) -> None:
    """Start the input's whole-file passes (``app.batch.prescan``) with the version's CSV
    dialect, before the run imports scikit-learn and loads the model; anything amiss (no
    such version, a resumed run's own version) is left for the run itself to find and say."""
    from app.batch import prescan
    from app.errors import SegmentsError

    if resume is not None:
        return
    try:
        version = version or store.promoted(model_name)
        if version is None:
            return
        dialect = store.manifest(model_name, version).csv_format
    except (SegmentsError, ValueError, OSError):
        return
    prescan(source, id_column, dialect)


@app.command("example-data")
def example_data(
    out: Annotated[Path, typer.Option(help="folder to write to")] = Path("data"),
    customers: Annotated[
        int, typer.Option(min=100, max=5_000_000, help="about 0.9 GB of memory per million")
    ] = 20_000,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX)] = 7,
) -> None:
    """Write the seeded example customer table and transaction log."""
    from app.datasets import write_example_data

    paths = write_example_data(out, n_customers=customers, seed=seed)
    for kind, path in paths.items():
        console.print(f"{kind}: {path}", markup=False, soft_wrap=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
    store: STORE_OPTION = None,
    model_names: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="serve only these models (repeat it); the first is the default. "
            "Without it: every model in the store with a promoted version",
            callback=model_option,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn's own log level")] = "info",
) -> None:
    """Serve the promoted versions over HTTP (uvicorn); promotions are picked up live."""
    import contextlib

    from app.errors import ConfigError
    from app.redis_client import needs_redis
    from app.settings import get_settings

    # workers are separate processes: pass overrides the way Settings reads them
    if store is not None:
        os.environ["SEGMENTS_MODEL_STORE"] = str(store.resolve())
    if model_names:
        os.environ["SEGMENTS_MODEL_NAME"] = model_names[0]
        os.environ["SEGMENTS_MODELS"] = ",".join(model_names)
    try:
        settings = get_settings()
        settings.check_serving()
    except (ValueError, ConfigError) as exc:
        shown = str(exc) if isinstance(exc, ConfigError) else f"invalid settings: {exc}"
        console.print(f"[red]error:[/] {escape(shown)}", soft_wrap=True)
        raise typer.Exit(2) from None
    with contextlib.ExitStack() as stack:
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            import tempfile

            # /metrics is answered by any worker: let it aggregate all of them (the folder
            # of the workers' metric files goes when serve exits)
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="segments-metrics-"))
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
            stack.callback(os.environ.pop, "PROMETHEUS_MULTIPROC_DIR", None)
        if needs_redis(settings) and settings.redis_url is None:
            from app.history import EmbeddedRedis, EmbeddedRedisError
            from app.redis_client import service_prefix

            # one embedded server for all workers, stopped when serve exits
            try:
                embedded = stack.enter_context(EmbeddedRedis(settings.history_config().data_dir))
            except EmbeddedRedisError as exc:
                console.print(
                    f"[red]error:[/] recording or the rate limit needs Redis: {escape(str(exc))} "
                    "(set SEGMENTS_REDIS_URL, or install redis-server)",
                    soft_wrap=True,
                )
                raise typer.Exit(2) from None
            embedded.supervise()  # started again if it dies: the spool is replayed then
            os.environ["SEGMENTS_REDIS_URL"] = embedded.url
            stack.enter_context(
                service_prefix(embedded.data_dir, settings.key_prefix, settings.model_name)
            )
            console.print(
                f"embedded Redis at {embedded.url} (data in {settings.data_dir})",
                markup=False,
                soft_wrap=True,
            )
        _run_uvicorn(host, port, workers, log_level, settings)


def _run_uvicorn(host: str, port: int, workers: int, log_level: str, settings: Settings) -> None:
    import uvicorn

    from app.observability import forget_this_process, log_config
    from app.server import uvicorn_options

    if workers > 1:
        forget_this_process()  # this parent process serves nothing: its gauges must not count

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=log_config(settings.log_level),
        access_log=False,  # the service logs one JSON line per request itself
        proxy_headers=True,
        **uvicorn_options(settings),
    )


@app.command()
def dispatch(
    store: STORE_OPTION = None,
    model_name: Annotated[str | None, typer.Option("--model", callback=model_option)] = None,
) -> None:
    """Deliver segment events to webhook subscriptions (docs/webhooks.md). One dispatcher
    works per deployment; more processes stand by and take over if it dies."""

    from app.settings import get_settings
    from app.webhooks.standalone import dispatch as run

    if store is not None:
        os.environ["SEGMENTS_MODEL_STORE"] = str(store.resolve())
    if model_name is not None:
        os.environ["SEGMENTS_MODEL_NAME"] = model_name
    logging.getLogger("app").setLevel(logging.INFO)
    with fail_on_error(console):
        run(get_settings())


@app.command()
def openapi(
    out: Annotated[Path | None, typer.Option(help="write here instead of printing")] = None,
) -> None:
    """The service's OpenAPI document (the committed contract is openapi/openapi.json)."""
    from app.main import render_openapi

    text = render_openapi()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        console.print(f"wrote {out}", markup=False, soft_wrap=True)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except OSError as exc:  # a path the user named that is a folder, exists, or is not ours
        if exc.filename is None:  # (not about a path: a bug, with its traceback)
            raise
        paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
        console.print(
            f"[red]error:[/] {escape(f'{exc.strerror}: {paths}')}", highlight=False, soft_wrap=True
        )
        raise SystemExit(1) from None
    finally:
        # on the way out, nothing left to collect: the interpreter's exit otherwise runs full
        # garbage collections over every object the command's libraries made, 0.5-0.7 s
        # after a 1M-customer training (perf: gc_collect_main; bench/README.md). Objects are
        # still freed as their last reference goes; files are closed and flushed by then
        gc.freeze()
