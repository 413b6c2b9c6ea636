"""The generated JSON-LD @context documents (what BURGAS_CONTEXT_BASE_URL points at)."""

from __future__ import annotations

from functools import lru_cache

import orjson
from fastapi import APIRouter, HTTPException, Response

from adapter.ngsi.context import generated_context_document, subjects

router = APIRouter(tags=["@context"])
MEDIA_TYPE = "application/ld+json"


@lru_cache(maxsize=64)
def _document(subject: str) -> bytes:
    return orjson.dumps(generated_context_document(subject), option=orjson.OPT_INDENT_2)


@router.get("/contexts", summary="Subjects with a generated @context")
async def context_index() -> dict[str, list[str]]:
    """The subjects served under /contexts/{subject}.jsonld."""
    return {"subjects": subjects()}


@router.get("/contexts/{subject}.jsonld", summary="The generated @context of a Smart Data Models subject",
            response_class=Response, responses={200: {"content": {MEDIA_TYPE: {}}}, 404: {}})
async def context_document(subject: str) -> Response:
    """Every type and attribute term of the subject's models mapped to its IRI."""
    if subject not in subjects():
        raise HTTPException(404, f"no @context for subject {subject!r}")
    # Brokers cache contexts by URL; a day keeps them fresh across adapter upgrades.
    return Response(_document(subject), media_type=MEDIA_TYPE,
                    headers={"Cache-Control": "public, max-age=86400",
                             "Access-Control-Allow-Origin": "*"})
