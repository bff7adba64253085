"""Several segmentations in one service: one ``ModelHolder`` per model of the store.

The service serves every model in the store that has a promoted version (or the ones
``SEGMENTS_MODELS`` / ``segments serve --model A --model B`` name), and always the default
model (``SEGMENTS_MODEL_NAME``). A request chooses one with ``?model=NAME``; without it, the
default answers, so today's clients work unchanged.

Every model-specific feature reads its parts from the app's ``State``: ``holder`` (the serving
model), ``history`` (recording, membership, flows), ``behaviour`` (event aggregates). The
default model keeps the app's state itself, and so today's Redis keys exactly; any other model
gets a ``ModelState``, a view of the app's state with its own ``holder`` and its own recording
under the key prefix ``<prefix>m:<model>:`` and a spool folder of its own. ``state_for``
resolves the view from the query; an unknown model is a 404 naming the known ones.

The watcher (``Models.watch``) refreshes every holder and adds a model that appeared in the
store with a promoted version, without a restart. The holders are independent: promoting one
model never touches another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qsl

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.datastructures import State

from app.errors import StoreError
from app.events.store import BATCH_DEADLINE_S, BehaviourStore
from app.history import HistoryConfig, Keys, open_history
from app.problems import Problem, invalid
from app.registry.store import ModelStore
from app.serving import ModelHolder
from app.words import did_you_mean

log = logging.getLogger(__name__)
MODEL_PARAMETER = "model"
_MODEL_NEEDLE = b"model="


class ModelState(State):
    """The app's state as one model sees it: its own attributes first, then the app's."""

    def __init__(self, base: State, own: dict[str, Any]) -> None:
        super().__init__(own)
        object.__setattr__(self, "_base", base)

    def __getattr__(self, key: str) -> Any:
        own: dict[str, Any] = object.__getattribute__(self, "_state")
        if key in own:
            return own[key]
        return getattr(object.__getattribute__(self, "_base"), key)


async def warn_if_recorded_elsewhere(redis: Redis, config: HistoryConfig, default: str) -> None:
    """The default model records under the bare prefix (``config``'s); records of it under
    its own prefix (``m:<name>:``, made while ``SEGMENTS_MODEL_NAME`` named another model, by
    this service or a ``segments`` command) are not seen by this service: say so at start."""
    keys = Keys.from_config(config.of_model(default))
    try:
        found = await redis.exists(*(keys.registry(shard) for shard in range(keys.shards)))
    except (RedisError, OSError):
        return
    if found:
        log.warning(
            "model %s has records under %r, made while SEGMENTS_MODEL_NAME named another "
            "model; as the default model (SEGMENTS_MODEL_NAME=%s) it is read and recorded "
            "under %r, so those records are not seen: run the service and the segments "
            "commands with the same SEGMENTS_MODEL_NAME (docs/several-models.md)",
            default,
            keys.prefix,
            default,
            config.key_prefix,
        )


def model_config(config: HistoryConfig, name: str) -> HistoryConfig:
    """The recording configuration of a model other than the default: keys and spool apart."""
    return config.of_model(name)


class Models:
    """The models this service serves, each with its holder and (but the default) its state.

    Parameters
    ----------
    state
        The app's state (the default model's parts are on it).
    store
        The model store.
    default
        ``SEGMENTS_MODEL_NAME``.
    only
        The models to serve (empty: every model with a promoted version).
    reload_interval
        Seconds between checks of the store.
    """

    def __init__(
        self,
        state: State,
        store: ModelStore,
        default: str,
        only: tuple[str, ...],
        reload_interval: float,
    ) -> None:
        self.state, self.store, self.default, self.only = state, store, default, only
        self.reload_interval = reload_interval
        self.views: dict[str, State] = {default: state}
        self._stack: contextlib.AsyncExitStack | None = None
        self._redis: Redis | None = None
        self._config: HistoryConfig | None = None
        self._record = False
        self._lock = asyncio.Lock()
        self._broken: set[str] = set()  # models whose pointer could not be read (logged once)
        # the models ``only`` names that are not served, and why (/readyz: named_models)
        self.not_served: dict[str, str] = {}

    def open_with(
        self,
        stack: contextlib.AsyncExitStack,
        redis: Redis | None,
        config: HistoryConfig,
        record: bool,
    ) -> None:
        """What a new model's recording is opened with (closed with ``stack``)."""
        self._stack, self._redis, self._config, self._record = stack, redis, config, record

    @property
    def names(self) -> list[str]:
        return sorted(self.views)

    def holder(self, name: str) -> ModelHolder:
        found: ModelHolder = self.views[name].holder
        return found

    def _wanted(self) -> list[str]:
        """Models of the store to serve now (besides the default): promoted, and allowed.

        A model ``only`` names that cannot be served yet (not in the store: a typo, or not
        trained yet; trained but not promoted; promoted, its version failing to load) is no
        reason to refuse to start: it is served as soon as it is promoted, without a restart,
        and refusing would take every other model down on a restart too. So it is warned of
        (again when its reason changes) and kept in ``not_served`` for /readyz, which says
        ``degraded`` while it is there."""
        wanted, not_served = [], {}
        for name in self.only or tuple(self.store.model_names()):
            if name == self.default:
                continue
            if name in self.views:  # served, unless its promoted version never loaded
                if not self.only or self.holder(name).current is not None:
                    continue
                why = "its promoted version cannot be loaded (details in the log)"  # no path
            else:
                try:
                    if self.store.promoted(name) is not None:
                        wanted.append(name)
                        continue
                    why = self.store.no_promoted_version(
                        name, f"promote one: segments models promote VERSION --model {name}"
                    )
                except StoreError as exc:  # a broken pointer: the others are still served
                    if name not in self._broken:
                        log.error("cannot serve model %s: %s", name, exc)
                    self._broken.add(name)
                    why = "its promoted.json cannot be read (details in the log)"  # names no path
            if self.only:
                not_served[name] = why
                if self.not_served.get(name) != why:
                    log.warning(
                        "SEGMENTS_MODELS names model %r, which is not served: %s; it is served "
                        "once it is in the store with a promoted version (no restart needed), "
                        "and /readyz says 'degraded' until then",
                        name,
                        why,
                    )
        self.not_served = not_served
        return wanted

    async def refresh(self) -> None:
        """Refresh every holder; add the models that appeared in the store."""
        async with self._lock:
            for name in self.names:
                await asyncio.to_thread(self.holder(name).refresh)
            try:
                wanted = await asyncio.to_thread(self._wanted)
            except OSError as exc:
                log.warning("cannot list the model store: %s", exc)
                return
            added = [name for name in wanted if name not in self.views]
            for name in added:
                await self._add(name)
            if added and self.only:  # one whose promoted version failed to load: not served
                await asyncio.to_thread(self._wanted)

    async def _add(self, name: str) -> None:
        holder = ModelHolder(self.store, name, self.reload_interval)
        await asyncio.to_thread(holder.refresh, True)
        own: dict[str, Any] = {"holder": holder, "history": None, "behaviour": None}
        if self._stack is not None and self._redis is not None and self._config is not None:
            config = model_config(self._config, name)
            if self._record:
                own["history"] = await self._stack.enter_async_context(
                    open_history(config, client=self._redis)
                )
            deadline = max(config.batch_timeout_s, BATCH_DEADLINE_S)
            own["behaviour"] = BehaviourStore(self._redis, Keys.from_config(config), deadline)
        self.views[name] = ModelState(self.state, own)
        log.info("serving model %s too (?model=%s)", name, name)

    async def watch(self) -> None:
        """Refresh every ``reload_interval`` seconds until cancelled; never dies."""
        while True:
            await asyncio.sleep(self.reload_interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("model watcher failed")

    def view(self, name: str) -> State:
        found = self.views.get(name)
        if found is None:
            raise unknown_model(name, self.names)
        return found


def unknown_model(name: str, known: list[str]) -> Problem:
    shown = name if len(name) <= 100 else name[:100] + "…"
    return Problem(
        404,
        "Unknown model",
        f"no model {shown!r} is served here{did_you_mean(name, known)}"  # (?model=teirs)
        f"; known models: {', '.join(known)}",
        type_="/problems/unknown-model",
    )


MAX_MODEL_NAME = 200  # the longest ?model= read (app.deps.ModelQuery)


def one_model(names: list[str]) -> str | None:
    """The model a query names (``?model=``), or None; ``?model=a&model=b`` is a 422: which
    one was meant cannot be told (the last one was served)."""
    if len(names) > 1:
        raise invalid([{"field": "model", "message": f"given {len(names)} times: name one model"}])
    if names and len(names[0]) > MAX_MODEL_NAME:  # as FastAPI refuses it on the other routes
        message = f"String should have at most {MAX_MODEL_NAME} characters"
        raise invalid([{"field": "model", "message": message}])
    return names[0] if names else None


def state_for(state: State, name: str | None) -> State:
    """The state of model ``name`` (None or empty: the default model's, the app's own)."""
    if not name:
        return state
    models: Models | None = getattr(state, "models", None)
    if models is None:  # no lifespan ran (or it is starting): the default model only
        default: str = state.settings.model_name
        if name == default:
            return state
        raise unknown_model(name, [default])
    if name == models.default:
        return state
    return models.view(name)


def state_for_query(state: State, query: bytes) -> State:
    """``state_for`` from a raw query string (the assignment fast path): the default model's
    state at the cost of one substring test when the query names no model."""
    if not query or _MODEL_NEEDLE not in query:
        return state
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    names = [v for k, v in pairs if k == MODEL_PARAMETER]
    return state_for(state, one_model(names))
