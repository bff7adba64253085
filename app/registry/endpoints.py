"""The versions in the store, their manifests, and promotion without a restart."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.deps import HolderDep, ModelStateDep
from app.problems import problem_responses
from app.registry.manifest import Manifest
from app.registry.schemas import Promotion, VersionList, VersionSummary
from app.rescore.endpoints import start_after_promotion
from app.security import scoped
from app.serving import ModelHolder

router = APIRouter(prefix="/v1/models", tags=["models"])
Version = Path(max_length=40, examples=["20261123-072415-3fa9c1"])


@router.get(
    "",
    operation_id="list_models",
    response_model=VersionList,
    responses=problem_responses(404),
    **scoped("read"),
)
async def list_models(holder: HolderDep) -> VersionList:
    manifests, unreadable = await asyncio.to_thread(holder.store.listed, holder.model_name)
    return version_list(holder, manifests, unreadable)


def version_list(
    holder: ModelHolder, manifests: list[Manifest], unreadable: dict[str, str]
) -> VersionList:
    """The listing of ``holder``'s model from its manifests (``ModelStore.listed``)."""
    store, name = holder.store, holder.model_name
    promoted = store.promoted(name)
    return VersionList(
        model_name=name,
        promoted=promoted,
        serving=holder.current.version if holder.current else None,
        versions=[
            VersionSummary(
                version=m.version,
                created_at=m.created_at,
                algorithm=m.algorithm,
                k=m.k,
                rows=m.data.rows,
                silhouette=m.quality.silhouette,
                promoted=m.version == promoted,
            )
            for m in manifests
        ],
        unreadable=unreadable,
    )


@router.get(
    "/{version}",
    operation_id="get_model",
    **scoped("read"),
    response_model=Manifest,
    responses=problem_responses(404, 422),
    response_description="the version's manifest.json",
)
async def get_model(holder: HolderDep, version: str = Version) -> Manifest:
    """A version's manifest: data, features, segments, quality, artefact hash, lineage."""
    return await asyncio.to_thread(holder.store.manifest, holder.model_name, version)


@router.post(
    "/{version}/promote",
    operation_id="promote_model",
    **scoped("admin"),
    response_model=Promotion,
    responses=problem_responses(404, 409, 422),
)
async def promote_model(
    state: ModelStateDep,
    holder: HolderDep,
    version: str = Version,
    rescore: Annotated[
        bool,
        Query(
            description="then re-assign every stored customer with it, in the background "
            "(as POST /v1/rescore; needs recording)"
        ),
    ] = False,
) -> Promotion:
    """Serve ``version`` from now on: verified, loaded and swapped without failing a request.

    Customers already recorded keep the segment the version before gave them until something
    assigns them again: ``?rescore=true`` moves them all now (``GET /v1/rescore`` follows it;
    a rescore already running starts over with this version)."""
    # the version replaced, as read under the pointer's lock: read before, a promotion by
    # another request meanwhile was named as it (B's review: "previous" was another version)
    serving, previous = await asyncio.to_thread(holder.promote, version)
    promotion = Promotion(model_name=holder.model_name, version=serving.version, previous=previous)
    if rescore:
        promotion.rescore, promotion.rescore_detail = await start_after_promotion(state)
    elif state.history is not None:
        promotion.rescore_detail = (
            "not asked: the customers already recorded keep their segment until something "
            "assigns them again; POST /v1/rescore (or ?rescore=true) moves them all now"
        )
    return promotion
