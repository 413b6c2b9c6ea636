"""One sample entity per model, built from its official key-values example.

The example's defects are repaired exactly as tests/test_models_examples.py names them.
"""

from __future__ import annotations

from functools import cache

from adapter.ngsi.serialize import from_key_values
from data_models import AttrMeta, Entity


def example_path(model: type[Entity]) -> str:
    return f"smart-data-models/{model.subject}/{model.entity_type}/examples/example.json"


@cache
def sample_entity(model: type[Entity]) -> Entity:
    """The model's official example with its named defects repaired (tests/test_models_examples.py)."""
    if model.subject.startswith("burgas."):
        return _extension_sample(model)
    from tests.test_models_examples import _repaired

    entity = from_key_values(_repaired(model), model)
    # Give one observed attribute a metadata that differs from the defaults, so that the
    # normalized round trip exercises observedAt/datasetId too.
    observed = [s for s in model.attributes if s.ngsi.observed and getattr(entity, s.field) is not None]
    if observed:
        meta = {observed[0].field: AttrMeta(observed_at="2020-01-01T00:00:00Z",
                                            dataset_id="urn:ngsi-ld:Dataset:sample")}
        entity = entity.model_copy(update={"attr_meta": meta})
    return entity


def _extension_sample(model: type[Entity]) -> Entity:
    data = {"id": f"urn:ngsi-ld:{model.entity_type}:sample", "type": model.entity_type,
            "name": "Център", "location": {"type": "Polygon", "coordinates": [[
                [27.46, 42.49], [27.48, 42.49], [27.48, 42.51], [27.46, 42.51], [27.46, 42.49]]]}}
    return from_key_values(data, model)
