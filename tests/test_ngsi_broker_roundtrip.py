"""What comes back from a broker parses back into the model that was sent, in all three forms.

Every model's sample entity goes through the broker client into the embedded broker over HTTP with
the generated @context, and is read back (normalized, concise, keyValues) with the same context.
"""

from __future__ import annotations

import asyncio

import pytest

from adapter.ngsi.batching import OutgoingEntity
from adapter.ngsi.client import BrokerClient
from adapter.ngsi.context import ContextMode, context_for
from adapter.ngsi.serialize import Form, from_dict, to_dict
from adapter.runtime import local_reference_contexts, write_generated_contexts
from data_models import Entity
from ngsild_broker import BrokerSettings, EmbeddedBroker
from tests.model_samples import sample_entity

pytestmark = pytest.mark.integration
MODELS = sorted(Entity.registry.values(), key=lambda m: m.entity_type)
BASE_URL = "http://contexts.invalid/"  # resolved by the broker's offline context files only


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    files = write_generated_contexts(tmp_path_factory.mktemp("contexts"), BASE_URL)
    files.update(local_reference_contexts())
    with EmbeddedBroker(BrokerSettings(port=0, context_files=files)) as running:
        yield running


async def _round_trip(url: str, entity: Entity, mode: ContextMode) -> dict[Form, Entity]:
    context = context_for(type(entity), mode, BASE_URL)
    async with BrokerClient(url, tenant=f"rt{mode.value}") as client:
        result = await client.upsert([OutgoingEntity(entity.id, entity.entity_type,
                                                     to_dict(entity, Form.NORMALIZED), context)])
        assert result.ok, result
        back = {}
        for form, options in ((Form.NORMALIZED, None), (Form.CONCISE, "concise"),
                              (Form.KEY_VALUES, "keyValues")):
            params = {"options": options} if options else {}
            # The generated context is one URL, so it travels in the Link header of a GET.
            wire = await client.get_entity(entity.id, context=context, params=params)
            assert wire is not None
            back[form] = from_dict(wire, form=form)
        return back


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.entity_type)
def test_entities_read_back_from_the_broker_equal_what_was_sent(broker, model):
    entity = sample_entity(model)
    back = asyncio.run(_round_trip(broker.url, entity, ContextMode.GENERATED))
    assert back[Form.NORMALIZED] == entity
    assert back[Form.CONCISE] == entity
    assert back[Form.KEY_VALUES] == entity.model_copy(update={"attr_meta": {}})
