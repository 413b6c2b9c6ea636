"""The mapper framework: raw records in, ``Mapped`` entities or ``Rejected`` records out.

A feed's mapping is a :class:`FeedMapper`: the model it produces, a map function, and its id rule
in words. The map function takes one :class:`~adapter.sources.base.RawRecord`, reads it through
declarative tables of :class:`Attr` rows (target attribute <- source field, transform, unit), and
returns a :class:`Mapped` or raises a :class:`~adapter.errors.RecordError`. It never fetches.

* :func:`map_one` turns a raised error (or a record the source already marked broken) into a
  :class:`Rejected` naming the source, the record and the reason, so one bad record never stops the
  others.
* :func:`map_feed` maps a whole fetch and merges records that give the same entity id (the feeds
  repeat features): the fetch's entities are held until the end, so it suits bounded fetches.
  :func:`iter_mapped` streams without merging.

Merge rule (two records, one id, one fetch): the readings are united (one history snapshot per
observation time; at equal times the later record's snapshot wins) and the current state is the
entity with the newer observation time (at equal or no times, the later record's). Values and
readings a mapper left out, with their reasons, are kept in ``Mapped.notes``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from math import nan
from typing import Any, Generic, TypeVar

import pydantic
from pydantic import ValidationError

from adapter.errors import MappingError, RecordError
from adapter.mapping import parse
from adapter.sources.base import RawRecord
from data_models import AttrMeta, Entity

logger = logging.getLogger(__name__)
E = TypeVar("E", bound=Entity)

MAX_REASON = 500
_MAX_NUMBER_TEXT, _UNIT_CODES = parse.MAX_NUMBER_TEXT, parse.UNIT_CODES  # read's hot loop


@dataclass(frozen=True, slots=True)
class Mapped:
    """One entity from one record (or several merged): its current state and every reading.

    ``entity`` is the current state (what a broker upsert sends). ``history`` holds one snapshot
    per reading of the record's time series, oldest first, each carrying that reading's values and
    the model's required attributes (what a temporal sink stores); empty for static records.
    ``source_crs`` is the CRS the geometry came in (kept as metadata), ``notes`` the values or
    readings left out with their reasons, ``record`` the source record key(s).
    """

    entity: Entity
    history: tuple[Entity, ...] = ()
    source_crs: str | None = None
    notes: tuple[str, ...] = ()
    record: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that could not become an entity: where it came from, why, and what it held."""

    source: str
    record: str
    reason: str
    payload: Any = None
    # The mapper itself failed (an unexpected exception), not the record: a run with such a
    # rejection is not a complete picture of the source, so nothing is deleted on its account.
    mapper_failed: bool = False

    @classmethod
    def of(cls, record: RawRecord, reason: str, *, mapper_failed: bool = False) -> Rejected:
        """A rejection of ``record`` (the reason is cut to MAX_REASON characters)."""
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - 3] + "..."
        return cls(record.source, record.key, reason, record.payload, mapper_failed)

    def error(self) -> MappingError:
        """The rejection as the adapter's error class (for quarantine and logs)."""
        return MappingError(self.reason, source=self.source, record=self.record)


MapFunction = Callable[[RawRecord], Mapped]


@dataclass(frozen=True, slots=True)
class FeedMapper:
    """How one feed becomes entities: the model, the map function, and the id rule in words."""

    feed: str
    model: type[Entity]
    map: MapFunction
    id_rule: str

    def __call__(self, record: RawRecord) -> Mapped | Rejected:
        return map_one(self, record)


def map_one(mapper: FeedMapper, record: RawRecord) -> Mapped | Rejected:
    """Map one record; every record error becomes a :class:`Rejected`."""
    if record.problem:
        return Rejected.of(record, record.problem)
    try:
        mapped = mapper.map(record)
    except RecordError as exc:
        return Rejected.of(record, exc.reason)
    except ValidationError as exc:  # a model refused what the tables produced
        return Rejected.of(record, validation_reason(exc))
    except ValueError as exc:  # a parse helper's reason, raised outside a mapping table
        return Rejected.of(record, str(exc) or type(exc).__name__)
    except Exception as exc:  # noqa: BLE001 - a mapper bug on one record must not stop a sync or a stream
        logger.exception("%s %s: the mapper failed", record.source, record.key)
        return Rejected.of(record, f"the mapper failed: {type(exc).__name__}: {exc}", mapper_failed=True)
    if mapped.notes:
        logger.debug("%s %s: left out %s", record.source, record.key, "; ".join(mapped.notes))
    return mapped


def iter_mapped(mapper: FeedMapper, records: Iterable[RawRecord]) -> Iterator[Mapped | Rejected]:
    """Map records one by one, streaming (no merging of equal ids)."""
    for record in records:
        yield map_one(mapper, record)


def map_feed(mapper: FeedMapper, records: Iterable[RawRecord]) -> Iterator[Mapped | Rejected]:
    """Map one fetch: rejections as they come, then each entity once (equal ids merged)."""
    by_id: dict[str, Mapped] = {}
    for record in records:
        result = map_one(mapper, record)
        if isinstance(result, Rejected):
            yield result
        else:
            fold(by_id, result)
    yield from by_id.values()


def fold(by_id: dict[str, Mapped], result: Mapped) -> bool:
    """Add one result to a fetch's entities by id, merged into an earlier result of the same id
    (see merge); True when the id is new. The one merge loop of batch fetches and streams."""
    key = result.entity.id
    earlier = by_id.get(key)
    if earlier is None:
        by_id[key] = result
        return True
    logger.debug("merging %s into %s (same id %s)", result.record, earlier.record, key)
    by_id[key] = merge(earlier, result)
    return False


def merge(earlier: Mapped, later: Mapped) -> Mapped:
    """Two results for one entity id: union of readings, newest current state wins."""
    t_earlier = earlier.entity.observation_time()
    t_later = later.entity.observation_time()
    earlier_newer = t_earlier is not None and (t_later is None or t_earlier > t_later)
    current, other = (earlier, later) if earlier_newer else (later, earlier)
    snapshots: dict[datetime | None, Entity] = {}
    for snapshot in (*earlier.history, *later.history):
        snapshots[snapshot.observation_time()] = snapshot
    history = tuple(sorted(snapshots.values(), key=_time_key))
    records = " + ".join(r for r in (earlier.record, later.record) if r)
    return Mapped(current.entity, history, current.source_crs or other.source_crs,
                  earlier.notes + later.notes, records or None)


def _time_key(entity: Entity) -> tuple[bool, datetime | None]:
    time = entity.observation_time()
    return (time is not None, time)


# --- declarative tables ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Attr:
    """One row of a mapping table: target attribute <- source field, through a transform, in a unit.

    ``transform`` turns the raw value into the attribute value (or None: absent) and raises
    ``ValueError`` with a reason. A blank source value (None, "") means the attribute is absent.
    ``unit`` fixes a UN/CEFACT code; ``unit_source`` names the source field holding a unit string
    (mapped by :data:`adapter.mapping.parse.UNIT_CODES`); with neither, the model's unit applies.
    """

    target: str
    source: str
    transform: Callable[[Any], Any] = parse.text
    unit: str | None = None
    unit_source: str | None = None


@dataclass(slots=True)
class Values:
    """What a table read from one source object: values, their units, and what it left out."""

    values: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read(table: Sequence[Attr], source: Mapping[str, Any], *, strict: bool = True,
         where: str = "") -> Values:
    """Apply a table to one source object.

    ``strict``: the first bad value raises :class:`MappingError` (the record is rejected);
    otherwise a bad value is left out and its reason kept in ``problems`` (the rest go on).
    """
    out = Values({}, {}, [])  # (positional: skips the default factories, per reading)
    values, units, get = out.values, out.units, source.get
    for attr, key, target, floor, unit, unit_source in _compiled(table):
        raw = get(key)
        if raw is None:
            continue  # absent
        if type(raw) is str:
            if not raw:
                continue  # the feeds' usual blank (other blanks, such as "  ", go to _read_one)
            if floor is not None and len(raw) <= _MAX_NUMBER_TEXT:
                # Inline number (see parse.NUMBER_FLOORS): a series reads thousands. A value or
                # unit this does not take goes through _read_one below, which says why.
                try:
                    value = float(raw)
                except ValueError:
                    value = nan
                if value >= floor and value - value == 0.0:  # (finite: inf - inf and nan are nan)
                    if unit_source is None:
                        values[target] = value
                        if unit is not None:
                            units[target] = unit
                        continue
                    unit_text = get(unit_source)
                    code = _UNIT_CODES.get(unit_text) if type(unit_text) is str else None
                    if code is not None:
                        values[target] = value
                        units[target] = code
                        continue
        _read_one(attr, raw, source, strict, where, out)
    return out


def _read_one(attr: Attr, raw: Any, source: Mapping[str, Any], strict: bool, where: str, out: Values) -> None:
    """One table row the general way (``raw``: its value, not None): blanks, every transform,
    units and reasons."""
    if parse.is_blank(raw):
        return
    try:
        value = attr.transform(raw)
        unit = attr.unit
        if attr.unit_source is not None:
            unit = parse.unit_code(source.get(attr.unit_source))
    except ValueError as exc:
        reason = f"{where}{attr.source}: {exc}"
        if strict:
            raise MappingError(reason) from None
        out.problems.append(reason)
        return
    if value is None:
        return
    out.values[attr.target] = value
    if unit is not None:
        out.units[attr.target] = unit


# (row, source key, target, number floor or None, fixed unit, unit source), unpacked once.
_Step = tuple[Attr, str, str, float | None, str | None, str | None]
# Compiled tables by id: mapping tables are module-level tuples read for every record (and every
# reading of a series), so their rows are looked up once. The table itself is kept with its plan,
# which keeps its id from being reused.
_tables: dict[int, tuple[Sequence[Attr], tuple[_Step, ...]]] = {}


def _compiled(table: Sequence[Attr]) -> tuple[_Step, ...]:
    """The steps of ``table``, one per row."""
    known = _tables.get(id(table))
    if known is not None and known[0] is table:
        return known[1]
    steps = tuple((attr, attr.source, attr.target, parse.NUMBER_FLOORS.get(attr.transform), attr.unit,
                   attr.unit_source) for attr in table)
    if isinstance(table, tuple):  # immutable: safe to keep (a list may change between calls)
        _tables[id(table)] = (table, steps)
    return steps


@cache
def declared_units(model: type[Entity]) -> Mapping[str, str | None]:
    """Field name -> the unit code the model declares for it."""
    return {spec.field: spec.unit for spec in model.attributes}


def attr_meta(model: type[Entity], units: Mapping[str, str] | None = None,
              observed_at: Mapping[str, datetime] | None = None,
              default_time: datetime | None = None) -> dict[str, AttrMeta]:
    """Per-attribute metadata where it differs from the model's unit or the entity's time."""
    declared = declared_units(model)
    units, observed_at = units or {}, observed_at or {}
    if not observed_at and units.items() <= declared.items():
        return {}  # the usual case: every unit is the model's own (a C-level subset check)
    meta: dict[str, AttrMeta] = {}
    for name in {*units, *observed_at}:
        unit = units.get(name)
        unit = None if unit == declared.get(name) else unit
        time = observed_at.get(name)
        time = None if time == default_time else time
        if unit is not None or time is not None:
            meta[name] = AttrMeta(unit_code=unit, observed_at=time)
    return meta


def build(model: type[E], values: Mapping[str, Any], meta: Mapping[str, AttrMeta] | None = None) -> E:
    """Validate values into the model; a refusal raises :class:`MappingError` with the reason."""
    data = {**values, "attr_meta": dict(meta)} if meta else values
    if _NAME_LOOKUP and data.keys() <= _name_only_keys(model) and not _has_nested_object(data):
        # Keyed by field names (what every mapper writes): the same full validation, looking
        # each of the model's ~50 fields up by name only, not alias then name (~25 % faster).
        # A refusal is validated again below: its reason names missing fields by alias.
        try:
            entity: E = model.__pydantic_validator__.validate_python(data, by_alias=False, by_name=True)
            return entity
        except ValidationError:
            pass
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MappingError(validation_reason(exc)) from None


class Builder(Generic[E]):
    """:func:`build` for the records of one mapping, which share constant values.

    The constants are validated once, when the builder is made. Each record's own values (those
    not given as the constants' very objects) are validated per record by a model holding only
    those fields, made from the entity model's own field definitions (same types, same
    constraints, same config), and the entity is then assembled from validated values without
    validating the constants again. The result is the entity :func:`build` gives (the tests check
    it field for field). Anything this cannot take the short way (a refused value, a required
    field missing, a model with model-level validators, constants the model refuses, metadata)
    goes through :func:`build`, which gives the reason.
    """

    def __init__(self, model: type[E], constants: Mapping[str, Any]) -> None:
        self.model = model
        self._raw = dict(constants)
        self._constants: dict[str, Any] | None = None
        self._models: dict[frozenset[str], type[pydantic.BaseModel]] = {}
        # Per set of own fields that may take the short way (checked once): its partial validator.
        self._validators: dict[frozenset[str], Any] = {}
        fields = model.model_fields
        self._fast = (_NAME_LOOKUP and not model.__pydantic_decorators__.model_validators
                      and set(constants) <= _name_only_keys(model))
        if self._fast and constants:
            try:
                checked = self._partial(frozenset(constants)).model_validate(dict(constants))
                self._constants = {name: checked.__dict__[name] for name in constants}
            except ValidationError:
                self._fast = False  # every record then meets the reason in build()
        elif self._fast:
            self._constants = {}
        self._required = frozenset(name for name, info in fields.items() if info.is_required())
        self._defaults = {name: info.default for name, info in fields.items()
                          if info.default_factory is None and name not in self._required}
        self._factories = {name: info.default_factory for name, info in fields.items()
                           if info.default_factory is not None}
        self._copied = tuple(name for name, value in self._defaults.items()
                             if value is not None and type(value) not in (str, int, float, bool))

    def _partial(self, names: frozenset[str]) -> type[pydantic.BaseModel]:
        partial = self._models.get(names)
        if partial is None:
            fields = self.model.model_fields
            partial = pydantic.create_model(  # type: ignore[call-overload]
                self.model.__name__, __config__=self.model.model_config,
                **{name: (fields[name].annotation, fields[name]) for name in sorted(names)})
            if len(self._models) < 64:  # (a layer's records set a handful of field combinations)
                self._models[names] = partial
        return partial

    def __call__(self, values: Mapping[str, Any]) -> E:
        """The entity of ``values`` (constants included, as the very objects given at creation)."""
        constants = self._constants
        if constants is None or "attr_meta" in values:
            return build(self.model, values)
        raw = self._raw
        own = {k: v for k, v in values.items() if raw.get(k, _MISSING) is not v}
        names = frozenset(own)
        validator = self._validators.get(names)
        if validator is None:
            if not names <= _name_only_keys(self.model) or not self._required <= names | constants.keys():
                return build(self.model, values)
            validator = self._partial(names).__pydantic_validator__
            if len(self._validators) < 64:  # (a layer's records set a handful of field combinations)
                self._validators[names] = validator
        try:
            # (alias-then-name lookup: a compound's plain dict is keyed by wire names; the
            # top-level keys are field names no other field uses as its alias, checked above)
            checked = validator.validate_python(own)
        except ValidationError:
            return build(self.model, values)  # the reason, named as build names it
        data = dict(self._defaults)
        for name in self._copied:
            data[name] = copy.deepcopy(data[name])  # (as pydantic copies a mutable default)
        for name, factory in self._factories.items():
            data[name] = factory()  # type: ignore[call-arg]
        shared = {k: v for k, v in constants.items() if k in values and k not in names}
        for name, value in shared.items():
            data[name] = value.copy() if type(value) is list or type(value) is dict else value
        own_checked = checked.__dict__
        for name in names:
            data[name] = own_checked[name]
        entity = self.model.__new__(self.model)
        object.__setattr__(entity, "__dict__", data)
        object.__setattr__(entity, "__pydantic_fields_set__", set(shared) | names)
        object.__setattr__(entity, "__pydantic_extra__", None)
        object.__setattr__(entity, "__pydantic_private__", None)
        return entity


_MISSING = object()


def _has_nested_object(data: Mapping[str, Any]) -> bool:
    """A compound value as a plain dict keys its sub-model by wire names (``addressLocality``),
    which name-only lookup would refuse: such records go straight to the usual validation."""
    return any(type(value) is dict for key, value in data.items() if key != "attr_meta")


# validate_python(by_alias=, by_name=) exists since pydantic 2.11 (pyproject allows >= 2.7).
_NAME_LOOKUP = tuple(int(part) for part in pydantic.VERSION.split(".")[:2]) >= (2, 11)


@cache
def _name_only_keys(model: type[Entity]) -> frozenset[str]:
    """Field names that no other field uses as its alias: values keyed by these alone are found
    by name lookup exactly as by alias-then-name lookup."""
    fields = model.model_fields
    taken = {info.alias: name for name, info in fields.items() if info.alias}
    return frozenset(name for name in fields if taken.get(name, name) == name)


def validation_reason(exc: ValidationError) -> str:
    """A pydantic error as one short line: ``field: message; ...``."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "entity"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return f"{exc.title} refused {'; '.join(parts)}{more}"
