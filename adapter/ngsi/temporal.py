"""The NGSI-LD temporal API, as the adapter writes it: attribute instances added to an entity's history.

Writes (NGSI-LD 1.8, clauses 5.6.11 and 5.6.12):
- ``POST /temporal/entities/{id}/attrs`` adds instances to an existing temporal representation
  (204). The embedded broker has it; Orion-LD answers ``501 OperationNotSupported`` (its
  orionldPostTemporalAttributes is a stub), after which this writer uses the next form only.
- ``POST /temporal/entities`` creates the temporal representation or adds to it (201/204). The
  writer uses it when the entity has no temporal representation yet (404 on ``/attrs``) and
  against Orion-LD, which writes the instances to TRoE only, never to the current state.

Reads (``present``): which of some instances a broker already holds, asked with
``GET /temporal/entities/{id}?timerel=between`` of ``read_url`` (Mintaka's URL in front of
Orion-LD, whose own GET answers one state per time, not the instances).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson

from adapter.errors import AdapterError, BrokerUnavailableError, EntityRejectedError
from adapter.ngsi.batching import link_header, link_url
from adapter.ngsi.client import BrokerClient
from adapter.ngsi.results import Problem, parse_problem, request_error

logger = logging.getLogger(__name__)

Instances = Mapping[str, Sequence[Mapping[str, Any]]]
"""attribute name -> its instances (normalized attributes, each with ``observedAt``)."""
_REJECTED = frozenset({400, 409, 413, 422})
_NOT_IMPLEMENTED = frozenset({405, 501})


def timed_attributes(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """attribute name -> value, for the attributes of a normalized entity that carry ``observedAt``
    (its readings: what the temporal store keeps an instance of)."""
    return {name: value for name, value in document.items() if isinstance(value, dict) and "observedAt" in value}


def observed(instance: Mapping[str, Any]) -> float:
    """An instance's ``observedAt`` as Unix seconds (what the state compares)."""
    return datetime.fromisoformat(str(instance["observedAt"])).timestamp()


class TemporalWriter:
    """Adds attribute instances to entities' temporal representations through a BrokerClient."""

    def __init__(self, client: BrokerClient, *, read_url: str | None = None) -> None:
        self.client = client
        self.read_url = (read_url or client.base_url).rstrip("/")
        self.attrs_supported = True  # False once the broker answered 501 to POST .../attrs

    def with_tenant(self, tenant: str | None) -> TemporalWriter:
        """The same writer for another tenant (shares what it learnt of the broker)."""
        clone = object.__new__(TemporalWriter)
        clone.__dict__.update(self.__dict__)
        clone.client = self.client.with_tenant(tenant)
        clone._shared = self  # type: ignore[attr-defined]
        return clone

    def _learn_no_attrs(self) -> None:
        self.attrs_supported = False
        shared = getattr(self, "_shared", None)
        if shared is not None:
            shared.attrs_supported = False

    async def append(self, entity_id: str, entity_type: str, instances: Instances, context: Any) -> None:
        """Add the instances to the entity's history; raises the AdapterError of a failure.

        A request the broker finds too large (413) is split in halves until it fits.
        """
        try:
            await self._append(entity_id, entity_type, instances, context)
        except EntityRejectedError as exc:
            flat = [(name, value) for name, values in instances.items() for value in values]
            if exc.context.get("status") != 413 or len(flat) < 2:
                raise
            for part in (flat[: len(flat) // 2], flat[len(flat) // 2:]):
                half: dict[str, list[Any]] = {}
                for name, value in part:
                    half.setdefault(name, []).append(value)
                await self.append(entity_id, entity_type, half, context)

    async def _append(self, entity_id: str, entity_type: str, instances: Instances, context: Any) -> None:
        if self.attrs_supported:
            body = {**instances}
            problem = await self._post(f"/temporal/entities/{quote(entity_id, safe='')}/attrs", body, context)
            if problem is None:
                return
            if problem.status in _NOT_IMPLEMENTED:
                logger.info("the broker does not take POST /temporal/entities/{id}/attrs (%s); "
                            "adding instances with POST /temporal/entities", problem.describe())
                self._learn_no_attrs()
            elif problem.status != 404:  # 404: no temporal representation yet: create it below
                raise _error(problem, entity_id)
        problem = await self._post("/temporal/entities", {"id": entity_id, "type": entity_type, **instances},
                                   context)
        if problem is not None:
            raise _error(problem, entity_id)

    async def present(self, entity_id: str, instances: Instances, context: Any) -> set[tuple[str, float]]:
        """Which of the instances (attribute, observedAt) the broker already holds."""
        times = [observed(i) for values in instances.values() for i in values]
        if not times:
            return set()
        start = datetime.fromtimestamp(min(times), UTC)
        end = datetime.fromtimestamp(max(times), UTC) + timedelta(seconds=1)
        headers = {"Accept": "application/json"}
        link = link_url(context) if context is not None else None
        if link:
            headers["Link"] = link_header(link)
        params = {"timerel": "between", "timeAt": _iso(start), "endTimeAt": _iso(end),
                  "attrs": ",".join(sorted(instances))}
        client = self.client
        if self.read_url != client.base_url:
            client = client.with_tenant(client.tenant)
            client.base_url = self.read_url
        response = await client.request("GET", f"/temporal/entities/{quote(entity_id, safe='')}",
                                        headers=headers, params=params)
        if response.status_code == 404:
            return set()
        if response.status_code not in (200, 206):
            raise _error(parse_problem(response.status_code, response.content), entity_id)
        try:
            entity = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise BrokerUnavailableError("broker answered a temporal query with invalid JSON",
                                         entity_id=entity_id) from None
        held: set[tuple[str, float]] = set()
        for name in instances:
            found = entity.get(name) if isinstance(entity, dict) else None
            for item in found if isinstance(found, list) else [found] if isinstance(found, dict) else []:
                if isinstance(item, dict) and "observedAt" in item:
                    try:
                        held.add((name, observed(item)))
                    except ValueError:
                        continue
        return held

    async def _post(self, path: str, body: dict[str, Any], context: Any) -> Problem | None:
        client = self.client
        if client.context_mode == "body":
            headers = {"Content-Type": "application/ld+json"}
            if context is not None:
                body = {"@context": context, **body}
        else:
            headers = {"Content-Type": "application/json"}
            link = link_url(context)
            if link:
                headers["Link"] = link_header(link)
        response = await client.request("POST", path, content=orjson.dumps(body), headers=headers)
        if response.status_code < 300:
            return None
        return parse_problem(response.status_code, response.content)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _error(problem: Problem, entity_id: str) -> AdapterError:
    if problem.status in _REJECTED:
        return EntityRejectedError(f"broker rejected the instances: {problem.describe()}", entity_id=entity_id,
                                   status=problem.status, title=problem.title, detail=problem.detail,
                                   problem_type=problem.type)
    error = request_error(problem, "upsert")
    if error is None:  # a success-equivalent answer to a write cannot be: say what came
        error = BrokerUnavailableError(f"unexpected answer to a temporal write: {problem.describe()}")
    error.entity_id = entity_id
    return error
