"""The generated @context documents, hosted on the target broker (POST /ngsi-ld/v1/jsonldContexts).

Entities are enqueued naming their generated context at its service URL
(``BURGAS_CONTEXT_BASE_URL/<subject>.jsonld``): the state's hashes, the outbox and the quarantine
never depend on a broker or on one hosted copy. At delivery the outbox asks :class:`HostedContexts`
to publish the documents a chunk names (once; the URL and content hash are remembered per broker
URL in the state, and checked with one GET per document and run) and to swap each service URL for
the URL the broker returned. So entities queued long ago, or by an older version, go out naming the
context the broker holds now, and a broker that lost its contexts (an in-memory broker restarted,
a wiped database) is given them again: the outbox retries the entities it refused for that reason.

A broker without hosting (404/405/501) keeps the service URL, with one warning naming the setting:
then the broker must reach ``burgas-adapter serve`` there.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import orjson

from adapter.errors import AdapterError, TransientError
from adapter.ngsi.client import BrokerClient
from adapter.ngsi.context import generated_context_document, subjects
from adapter.sync.state import StateStore

logger = logging.getLogger(__name__)

_SERVICE_PATH = re.compile(r"/([\w.-]+)\.jsonld$")


@lru_cache(maxsize=1)
def _known_subjects() -> frozenset[str]:
    return frozenset(subjects())


@lru_cache(maxsize=1024)  # a handful of distinct URLs, looked up for every delivered entity
def subject_of(url: str) -> str | None:
    """The subject whose generated context `url` names at a service (any base URL), else None."""
    match = _SERVICE_PATH.search(url)
    if match is None or "/jsonldContexts/" in url:
        return None
    subject = match.group(1)
    return subject if subject in _known_subjects() else None


@lru_cache(maxsize=64)
def _document(subject: str) -> tuple[dict[str, Any], str]:
    document = generated_context_document(subject)
    digest = hashlib.blake2b(orjson.dumps(document, option=orjson.OPT_SORT_KEYS), digest_size=16)
    return document, digest.hexdigest()


def context_lost(error: AdapterError) -> str | None:
    """The @context URL a broker could not resolve (503/504 LdContextNotAvailable), else None."""
    if not str(error.context.get("problem_type", "")).endswith("LdContextNotAvailable"):
        return None
    return str(error.context.get("detail") or "") or None


class HostedContexts:
    """Publishes generated @context documents on one broker and names them in outgoing entities."""

    def __init__(self, client: BrokerClient, state: StateStore, service_url: str) -> None:
        self.client = client
        self.state = state
        self.service_url = service_url  # BURGAS_CONTEXT_BASE_URL, named in the fallback's warning
        self.broker = client.base_url
        self._hosted: dict[str, str] = {}  # subject -> URL on the broker
        self._checked: set[str] = set()  # subjects known to be there during this run
        self._unsupported: str | None = None  # the broker's answer when it has no hosting
        self._reset_told = False
        self._reset_seen = False  # a lost document found while delivering (see take_reset)

    def new_run(self) -> None:
        """A sync run starts: check again (GET) that each document it uses is still hosted."""
        self._checked.clear()

    async def prepare(self, contexts: Iterable[Any]) -> None:
        """Publish (or check) every generated document these @context values name.

        Raises the client's errors: TransientError when the broker is unreachable (nothing can be
        delivered then anyway), FatalError when it refuses access.
        """
        if self._unsupported is not None:
            return
        wanted: set[str] = set()
        for context in contexts:
            for item in context if isinstance(context, list) else (context,):
                if isinstance(item, str):
                    subject = subject_of(item)
                    if subject is not None and subject not in self._checked:
                        wanted.add(subject)
        for subject in sorted(wanted):
            await self._ensure(subject)
            if self._unsupported is not None:
                return

    async def broker_was_reset(self) -> bool:
        """Whether the broker lost the documents published on it before, and with them (restarted
        in memory, database reset) the entities: one GET, when a run starts. They are published
        again at once, so the next check finds them; the caller sends the entities again."""
        latest = self.state.latest_hosted_context(self.broker) if self._unsupported is None else None
        if latest is None:
            return False
        try:
            if await self.client.has_context(latest[1], retry=False):  # a down broker: one try
                return False
            for subject in self.state.hosted_subjects(self.broker):
                if subject in _known_subjects():
                    await self._ensure(subject)
        except TransientError as exc:  # the delivery meets it and reports it
            logger.debug("checking the @context on %s: %s", self.broker, exc)
            return False
        self._tell_reset()
        self._reset_seen = False  # told to the caller now
        return True

    def take_reset(self) -> bool:
        """Whether a delivery found the broker without a document it had (it restarted during a
        run, or under a live stream); the caller then sends everything again. Once per finding."""
        seen, self._reset_seen = self._reset_seen, False
        return seen

    def resolve(self, context: Any) -> Any:
        """`context` with each generated service URL replaced by the broker's URL for it."""
        if not self._hosted:
            return context
        if isinstance(context, list):
            return [self._url(item) for item in context]
        return self._url(context)

    def lost(self, urls: Iterable[str]) -> bool:
        """The broker could not resolve these URLs: if they are ours, check (and re-publish) them
        before the next delivery. True when one was ours."""
        ours = False
        for url in urls:
            for subject, hosted in self._hosted.items():
                if hosted == url or subject_of(url) == subject:
                    self._checked.discard(subject)
                    ours = True
            if not ours and self._hosted and "/jsonldContexts/" in url:
                # A hosted context, named some other way (another host name of the broker): check all.
                self._checked.clear()
                ours = True
        return ours

    def _url(self, item: Any) -> Any:
        if not isinstance(item, str):
            return item
        subject = subject_of(item)
        return self._hosted.get(subject, item) if subject is not None else item

    def _tell_reset(self) -> None:
        if not self._reset_told:
            self._reset_told = True
            logger.warning(
                "the broker at %s no longer has the @context documents published on it before: it "
                "was restarted without its data, or its database was reset. They are published "
                "again, and every source sends all its entities again from its next run on",
                self.broker)

    async def _ensure(self, subject: str) -> None:
        document, digest = _document(subject)
        known = self.state.hosted_context(self.broker, subject)
        if known is not None and known[1] == digest and await self.client.has_context(known[0]):
            self._hosted[subject] = known[0]
            self._checked.add(subject)
            return
        url, refusal = await self.client.host_context(document)
        if url is None:
            self._unsupported = refusal
            self._hosted.clear()
            logger.warning(
                "the broker at %s does not host @context documents (POST /ngsi-ld/v1/jsonldContexts "
                "answered %s): entities name the generated @context under BURGAS_CONTEXT_BASE_URL=%s "
                "instead, which the broker must be able to download (`burgas-adapter serve` serves "
                "it at /contexts/; set BURGAS_CONTEXT_BASE_URL to an address the broker reaches)",
                self.broker, refusal, self.service_url)
            return
        if known is not None and known[1] == digest:  # it had it: it lost its data
            self._reset_seen = True
            self._tell_reset()
        elif known is not None:
            logger.info("@context of %s changed: published again on %s", subject, self.broker)
        self.state.set_hosted_context(self.broker, subject, url, digest)
        self._hosted[subject] = url
        self._checked.add(subject)
