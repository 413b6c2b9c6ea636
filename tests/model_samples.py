"""One sample entity per model, built from its official key-values example.

For serializer and JSON-LD tests only: fields of the example that the model refuses are dropped
(tests/test_models_examples.py is where each official example's defects are named and checked).
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import ValidationError

from adapter.ngsi.serialize import from_key_values
from adapter.reference import load_json
from data_models import AttrMeta, Entity

_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


def example_path(model: type[Entity]) -> str:
    return f"smart-data-models/{model.subject}/{model.entity_type}/examples/example.json"


@lru_cache(maxsize=None)
def sample_entity(model: type[Entity]) -> Entity:
    """The model's official example, minimally repaired so that the model accepts it."""
    if model.subject.startswith("burgas."):
        return _extension_sample(model)
    data = dict(load_json(example_path(model)))  # type: ignore[arg-type]
    if not str(data.get("id", "")).startswith("urn:"):
        data["id"] = f"urn:ngsi-ld:{model.entity_type}:{data.get('id', 'sample')}"
    for key, value in list(data.items()):
        if isinstance(value, str) and _NAIVE.match(value):
            data[key] = value + "Z"
    data.pop("@context", None)
    for _ in range(len(data)):
        try:
            entity = from_key_values(data, model)
            break
        except ValidationError as exc:
            bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
            wire = {s.field: s.wire for s in model.attributes}
            keys = {wire.get(b, b) for b in bad} & set(data)
            if not keys:
                raise
            for key in keys:
                data.pop(key)
        except ValueError as exc:  # attributes the model does not declare
            unknown = str(exc).split("attribute(s) ", 1)[-1].split(", ")
            if not set(unknown) & set(data):
                raise
            for key in unknown:
                data.pop(key, None)
    else:  # pragma: no cover
        raise AssertionError(f"cannot build a sample {model.entity_type}")
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
