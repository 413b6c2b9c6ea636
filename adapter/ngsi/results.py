"""Broker answers to batch operations, read into per-entity results with typed errors.

Every answer listed in ../shared/docs/orion-ld-behaviour.md is understood, from both Orion-LD
modes and from other brokers:

- 201 with all ids, or with only the newly created ids (experimental mode, ETSI): all sent ids OK.
- 204 and 200: all OK.
- 207 `{"success": [...], "errors": [...]}`; `errors: []` is the legacy answer to a mixed upsert
  (all OK). An error item for an id that is also in `success` is Orion-LD legacy's "Duplicated
  Entity" note: the entity was written. An empty 207 (old Scorpio) carries no error: all OK.
- 207 with a bare array of per-entity objects (Scorpio 4.x: `{"id", "success"|"failure": [...]}`).
- Top-level ProblemDetails 4xx/5xx for the whole request.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import orjson

from adapter.errors import (
    AdapterError,
    AuthError,
    BrokerUnavailableError,
    ConfigError,
    EntityRejectedError,
    FatalError,
    RecordError,
    TransientError,
)

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
Operation = Literal["upsert", "delete", "delete_attr", "get", "query"]

ERRORS_NS = "https://uri.etsi.org/ngsi-ld/errors/"
NON_EXISTING_TENANT = ERRORS_NS + "NonExistingTenant"
RESOURCE_NOT_FOUND = ERRORS_NS + "ResourceNotFound"
INVALID_REQUEST = ERRORS_NS + "InvalidRequest"


@dataclass(frozen=True, slots=True)
class Problem:
    """A ProblemDetails answer (RFC 7807) as the broker gave it."""

    status: int
    type: str = ""
    title: str = ""
    detail: str = ""

    @property
    def name(self) -> str:
        """The short error type, e.g. "BadRequestData"."""
        return self.type.rsplit("/", 1)[-1]

    def describe(self) -> str:
        """One line for logs and quarantine."""
        text = f"{self.status} {self.name or 'error'}"
        if self.title:
            text += f": {self.title}"
        if self.detail:
            text += f" ({self.detail})"
        return text


def problem_from(status: int, data: Any) -> Problem:
    """A Problem from a ProblemDetails-like object (Orion-LD, Scorpio, or anything else)."""
    if not isinstance(data, dict):
        return Problem(status, title=_text(data))
    raw_status: Any = data.get("status", data.get("errorCode", status))
    try:
        item_status = int(raw_status)
    except (TypeError, ValueError):
        item_status = status
    detail = data.get("detail", "")
    if isinstance(detail, dict):  # Scorpio: {"message": "..."}
        detail = detail.get("message", orjson.dumps(detail).decode())
    return Problem(item_status, _text(data.get("type", "")), _text(data.get("title", "")), _text(detail))


def _text(value: Any, limit: int = 500) -> str:
    text = value if isinstance(value, str) else "" if value is None else orjson.dumps(value).decode()
    return text[:limit]


def parse_problem(status: int, content: bytes) -> Problem:
    """The ProblemDetails of an error response; tolerant of empty or non-JSON bodies."""
    try:
        data = orjson.loads(content) if content else {}
    except orjson.JSONDecodeError:
        return Problem(status, title=content[:200].decode("utf-8", "replace"))
    return problem_from(status, data)


@dataclass
class BatchResult(Generic[K]):
    """Per-entity outcome of an operation: the keys that succeeded and the typed error of each failure."""

    succeeded: list[K] = field(default_factory=list)
    failed: dict[K, AdapterError] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    def merge(self, other: BatchResult[K]) -> BatchResult[K]:
        """Add another result to this one (in place) and return self."""
        self.succeeded.extend(other.succeeded)
        self.failed.update(other.failed)
        return self

    def fail(self, keys: Iterable[K], error: AdapterError) -> None:
        """Mark every key as failed with the same error."""
        for key in keys:
            self.failed[key] = error

    def _of(self, cls: type[AdapterError]) -> dict[K, AdapterError]:
        return {k: e for k, e in self.failed.items() if isinstance(e, cls)}

    @property
    def transient(self) -> dict[K, AdapterError]:
        """Failures to retry later."""
        return self._of(TransientError)

    @property
    def rejected(self) -> dict[K, AdapterError]:
        """Failures to quarantine."""
        return self._of(RecordError)

    @property
    def fatal(self) -> dict[K, AdapterError]:
        """Failures that need a human (configuration or authorisation)."""
        return self._of(FatalError)

    def raise_for_fatal(self) -> None:
        """Raise the first configuration or authorisation error, if any."""
        for error in self.fatal.values():
            raise error


def entity_error(problem: Problem, key: Hashable, op: Operation) -> AdapterError | None:
    """The error for one entity's problem, or None when it is success-equivalent."""
    entity_id = key[0] if isinstance(key, tuple) else str(key)
    if op in ("delete", "delete_attr") and problem.status == 404:
        # Deleting what is already gone reaches the goal (idempotent delete).
        return None
    context: dict[str, Any] = {"status": problem.status, "title": problem.title, "detail": problem.detail,
                               "problem_type": problem.type}
    if problem.status >= 500 or problem.status in (408, 429):
        return BrokerUnavailableError(f"broker failed for this entity: {problem.describe()}",
                                      entity_id=entity_id, **context)
    if problem.status in (401, 403):
        return AuthError(f"broker refused access: {problem.describe()}", entity_id=entity_id, **context)
    return EntityRejectedError(f"broker rejected the entity: {problem.describe()}",
                               entity_id=entity_id, **context)


def request_error(problem: Problem, op: Operation) -> AdapterError | None:
    """The error for a whole-request failure, or None when it is success-equivalent.

    Callers split the batch first for the statuses in `ISOLATE_STATUSES`.
    """
    context: dict[str, Any] = {"status": problem.status, "title": problem.title, "detail": problem.detail,
                               "problem_type": problem.type}
    status = problem.status
    if status == 404 and problem.type == NON_EXISTING_TENANT:
        if op in ("delete", "delete_attr"):
            # Orion-LD creates a tenant only on its first write: nothing exists yet, so there is
            # nothing to delete (summary item 23; issue #1228).
            return None
        return ConfigError(f"the broker has no such tenant: {problem.describe()}", **context)
    if status >= 500 or status in (408, 429):
        if status == 501:
            return ConfigError(f"the broker does not implement this request: {problem.describe()}", **context)
        return BrokerUnavailableError(f"broker unavailable: {problem.describe()}", **context)
    if status in (401, 403):
        return AuthError(f"broker refused access: {problem.describe()}", **context)
    # 400 (our headers, parameters or tenant), 404 on a batch route, 405, 406, 415...: the request
    # is wrong as configured, not one entity.
    return ConfigError(f"broker refused the request: {problem.describe()}", **context)


def should_isolate(problem: Problem) -> bool:
    """True when a whole-request refusal may be caused by one entity: split the batch to find it."""
    return problem.status in (409, 413, 422) or (problem.status == 400 and problem.type == INVALID_REQUEST)


def read_batch_answer(status: int, content: bytes, keys: Sequence[K], op: Operation) -> BatchResult[K]:
    """Per-entity result of a 2xx batch answer for `keys` (the ids sent, in order)."""
    result: BatchResult[K] = BatchResult()
    if status != 207:
        # 200/201/204: everything sent was written; 201 may list only the created ids.
        result.succeeded.extend(keys)
        return result
    try:
        data = orjson.loads(content) if content.strip() else {}
    except orjson.JSONDecodeError:
        logger.warning("unreadable 207 body from the broker; treating as unknown")
        result.fail(keys, BrokerUnavailableError("broker answered 207 with an unreadable body"))
        return result
    by_id: dict[str, list[K]] = {}
    for key in keys:
        by_id.setdefault(key[0] if isinstance(key, tuple) else str(key), []).append(key)
    success: set[str] = set()
    problems: dict[str, Problem] = {}
    unattributed: list[Problem] = []
    problem: Problem | None
    if isinstance(data, dict):
        success.update(i for i in data.get("success") or () if isinstance(i, str))
        for item in data.get("errors") or ():
            if not isinstance(item, dict):
                continue
            problem = problem_from(400, item.get("error", item))
            entity_id = item.get("entityId", item.get("id"))
            if entity_id in by_id:
                problems[entity_id] = problem
            else:
                unattributed.append(problem)
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, str):
                success.add(item)
                continue
            if not isinstance(item, dict):
                continue
            entity_id = item.get("id", item.get("entityId"))
            failure = item.get("failure") or item.get("error")
            if isinstance(failure, list):
                failure = failure[0] if failure else None
            if failure:
                problem = problem_from(400, failure)
                if entity_id in by_id:
                    problems[entity_id] = problem
                else:
                    unattributed.append(problem)
            elif entity_id in by_id:
                success.add(entity_id)
    for entity_id, entity_keys in by_id.items():
        problem = problems.get(entity_id)
        if problem is not None and entity_id in success:
            logger.info("broker noted %s for %s but wrote it", problem.describe(), entity_id)
            problem = None
        if problem is None and entity_id not in success and unattributed:
            # An error without a usable id ("no entity::id") and an id not confirmed: this one.
            problem = unattributed[0]
        for key in entity_keys:
            error = entity_error(problem, key, op) if problem is not None else None
            if error is None:
                result.succeeded.append(key)
            else:
                result.failed[key] = error
    return result
