"""The NGSI-LD q filter of the embedded broker: grammar, semantics, and SQL == Python."""

from __future__ import annotations

import sqlite3

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngsild_broker.q import QSyntaxError, datetime_ijd, parse_q
from ngsild_broker.sqlite.q_sql import to_sql

NS = "https://ex.org/ns#"


def expand(term: str) -> str:
    """A request context mapping every term into the test namespace (full IRIs stay)."""
    return term if "://" in term else NS + term


def prop(value, **extra):
    return {"type": "Property", "value": value, **extra}


def entity(n: int, **attrs) -> dict:
    doc = {"id": f"urn:ngsi-ld:T:{n}", "type": [NS + "T"],
           "createdAt": f"2024-01-0{n % 9 + 1}T00:00:00Z", "modifiedAt": "2024-02-01T10:00:00.500Z"}
    for name, attr in attrs.items():
        doc[name if "://" in name else NS + name] = attr
    return doc


ENTITIES = [
    entity(1, temperature=prop(21.5, observedAt="2024-03-01T10:00:00Z", unitCode="CEL"),
           name=prop("Burgas Center"), status=prop("ok"),
           refStation={"type": "Relationship", "object": "urn:ngsi-ld:Station:1"}),
    entity(2, temperature=prop(30, observedAt="2024-03-01T12:00:00.250Z", unitCode="CEL",
                               **{NS + "accuracy": prop(0.5)}),
           name=prop("Sarafovo"), status=prop("failed"),
           refStation={"type": "Relationship", "object": "urn:ngsi-ld:Station:2"}),
    entity(3, temperature=prop("30"), name=prop("Meden Rudnik"), active=prop(True),
           address=prop({"streetAddress": "Aleksandrovska 1", "addressLocality": "Burgas",
                         "geo": {"zip": 8000}})),
    entity(4, temperature=prop([10, 25, 40]), active=prop(False),
           label={"type": "LanguageProperty", "languageMap": {"bg": "Бургас", "en": "Burgas"}},
           tags=prop(["sea", "port"])),
    entity(5, count=prop(1), flag=prop(True), when=prop("2024-03-01T11:00:00+02:00"),
           blob=prop({"a": 1}), nothing=prop(None),
           **{"https://other.org/x.y": prop(7, observedAt="2023-12-31T23:59:59Z")}),
    entity(6, temperature=prop(-5.25, observedAt="not a date"), count=prop(0),
           when=prop("2024-03-01T09:30:00.999Z"), name=prop("Pomorie \"old\" town")),
]


def ids(query: str) -> set[str]:
    node = parse_q(query)
    return {e["id"].rsplit(":", 1)[1] for e in ENTITIES if node.matches(e, expand)}


def sql_ids(query: str) -> set[str] | None:
    node = parse_q(query)
    translated = to_sql(node, expand)
    if translated is None:
        return None
    where, params = translated
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE entities (id TEXT, doc TEXT)")
    db.executemany("INSERT INTO entities VALUES (?, ?)",
                   [(e["id"], orjson.dumps(e).decode()) for e in ENTITIES])
    rows = db.execute(f"SELECT id FROM entities WHERE {where}", params).fetchall()
    return {r[0].rsplit(":", 1)[1] for r in rows}


CASES = [
    # comparisons on numbers, across int/float, and never across types
    ("temperature==30", {"2"}),
    ("temperature==\"30\"", {"3"}),
    ("temperature>21.5", {"2", "4"}),
    ("temperature>=21.5", {"1", "2", "4"}),
    ("temperature<0", {"6"}),
    ("temperature<=-5.25", {"6"}),
    ("temperature!=30", {"1", "3", "4", "6"}),
    ("temperature>\"1\"", {"3"}),
    ("temperature==30.0", {"2"}),
    ("temperature==1e1", {"4"}),
    # arrays: any element
    ("temperature==25", {"4"}),
    ("temperature==20..26", {"1", "4"}),
    ("tags==\"port\"", {"4"}),
    ("tags!=\"port\"", set()),
    # lists and ranges
    ("temperature==21.5,30", {"1", "2"}),
    ("temperature==0..30", {"1", "2", "4"}),
    ("temperature!=0..30", {"3", "6"}),
    ("name==\"Sarafovo\",\"Meden Rudnik\"", {"2", "3"}),
    ("name==\"B\"..\"N\"", {"1", "3"}),
    ("status==ok", {"1"}),
    # booleans are not numbers
    ("active==true", {"3"}),
    ("active==false", {"4"}),
    ("flag==1", set()),
    ("count==1", {"5"}),
    ("count==true", set()),
    ("active>false", set()),
    ("active!=true", {"4"}),
    # relationships, unquoted URIs
    ("refStation==urn:ngsi-ld:Station:1", {"1"}),
    ("refStation==\"urn:ngsi-ld:Station:2\"", {"2"}),
    ("refStation!=urn:ngsi-ld:Station:1", {"2"}),
    # existence
    ("temperature", {"1", "2", "3", "4", "6"}),
    ("!temperature", {"5"}),
    ("nothing", {"5"}),
    ("temperature.observedAt", {"1", "2", "6"}),
    ("!temperature.accuracy", {"1", "3", "4", "5", "6"}),
    ("address[geo.zip]", {"3"}),
    # logic and precedence: ';' binds tighter than '|'
    ("temperature>20;name==\"Sarafovo\"", {"2"}),
    ("status==ok|status==failed", {"1", "2"}),
    ("count==1|temperature>25;status==failed", {"2", "5"}),
    ("(count==1|temperature>25);status==failed", {"2"}),
    ("((temperature<0))", {"6"}),
    ("!temperature|active==false", {"4", "5"}),
    # attribute paths: members and sub-attributes
    ("temperature.unitCode==\"CEL\"", {"1", "2"}),
    ("temperature.accuracy<1", {"2"}),
    ("temperature.accuracy.observedAt", set()),
    # DateTimes quoted or not, as instants
    ("temperature.observedAt>2024-03-01T11:00:00Z", {"2"}),
    ("temperature.observedAt>=\"2024-03-01T10:00:00Z\"", {"1", "2"}),
    ("temperature.observedAt==2024-03-01T12:00:00.25Z", {"2"}),
    ("temperature.observedAt==2024-03-01T14:00:00.250+02:00", {"2"}),
    ("temperature.observedAt<2025-01-01T00:00:00Z", {"1", "2"}),
    ("when<2024-03-01T09:31:00Z", {"5", "6"}),
    ("when==2024-03-01T09:00:00Z..2024-03-01T09:30:00.999Z", {"5", "6"}),
    ("when>2024-03-01T09:30:00.998Z", {"6"}),
    ("modifiedAt>2024-02-01T10:00:00Z", {"1", "2", "3", "4", "5", "6"}),
    ("createdAt==2024-01-02T00:00:00Z", {"1"}),
    ("https://other.org/x.y.observedAt<2024-01-01T00:00:00Z", {"5"}),
    ("https://other.org/x.y==7", {"5"}),
    # compound values and language maps
    ("address[streetAddress]==\"Aleksandrovska 1\"", {"3"}),
    ("address[geo.zip]==8000", {"3"}),
    ("address[geo.zip]>9000", set()),
    ("address==\"Burgas\"", set()),
    ("blob[a]==1", {"5"}),
    ("label[bg]==\"Бургас\"", {"4"}),
    ("label[en]!=\"Sofia\"", {"4"}),
    ("label==\"Burgas\"", {"4"}),
    ("label[fr]", set()),
    # quoting
    ("name==\"Pomorie \\\"old\\\" town\"", {"6"}),
    ("name==\"a;b|c)\"", set()),
    # regular expressions (Python only)
    ("name~=\"^S\"", {"2"}),
    ("name!~=\"^S\"", {"1", "3", "6"}),
    ("label[en]~=\"urg\"", {"4"}),
]


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_q_selects_the_expected_entities(query: str, expected: set[str]) -> None:
    assert ids(query) == expected


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_sql_translation_gives_the_same_answer(query: str, expected: set[str]) -> None:
    got = sql_ids(query)
    if "~=" in query:
        assert got is None  # SQLite has no REGEXP: the caller falls back to matches()
    else:
        assert got == expected


@pytest.mark.parametrize("query", [
    "", "   ", "temperature==", "==5", "temperature>>5", "(temperature==1", "temperature==1)",
    "temperature>1,2", "temperature<1..5", "temperature==1..\"x\"", "active==true..false",
    "name==\"unterminated", "address[geo.zip", "address[]==1", "a..b==1", "name~=\"(\"",
    "temperature==1;", "|temperature==1", "temperature==1;;count==1", "!", "!(a==1)",
    "(" * 40 + "a" + ")" * 40, "a==" + ",".join(["1"] * 300), "x" * 9000,
])
def test_invalid_q_is_rejected(query: str) -> None:
    with pytest.raises(QSyntaxError):
        parse_q(query)


def test_a_key_sqlite_cannot_address_leaves_the_filter_to_python() -> None:
    node = parse_q('address[we"ird]==1')
    assert to_sql(node, expand) is None
    assert not node.matches(ENTITIES[2], expand)


def test_sql_parameters_carry_values_not_sql() -> None:
    where, params = to_sql(parse_q("name==\"x'); DROP TABLE entities; --\""), expand)
    assert "DROP" not in where
    assert "x'); DROP TABLE entities; --" in params


def test_expand_is_applied_to_attribute_and_sub_attribute_names_only() -> None:
    seen: list[str] = []

    def recording(term: str) -> str:
        seen.append(term)
        return expand(term)

    node = parse_q("temperature.accuracy.observedAt>2020-01-01T00:00:00Z|address[geo.zip]==1")
    for e in ENTITIES:
        node.matches(e, recording)
    assert set(seen) == {"temperature", "accuracy", "address"}


# Strings SQLite's julianday() may or may not accept: the Python reading must agree exactly.
_DT_PIECES = st.tuples(
    st.sampled_from(["2024", "0000", "9999", "1970"]), st.sampled_from(["01", "02", "12", "13", "00"]),
    st.sampled_from(["01", "29", "31", "32"]), st.sampled_from(["00", "23", "24", "25"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["", ":00", ":59", ":60", ":30.5", ":30.1235", ":30.9999", ":30.", ":1"]),
    st.sampled_from(["", "Z", "z", " Z", "+02:00", "-14:59", "+15:00", "+0200", "Zx", " ", "Z "]),
)


@settings(max_examples=300, deadline=None)
@given(_DT_PIECES)
def test_datetime_reading_agrees_with_sqlite(pieces: tuple[str, ...]) -> None:
    y, mo, d, h, mi, sec, tz = pieces
    text = f"{y}-{mo}-{d}T{h}:{mi}{sec}{tz}"
    db = sqlite3.connect(":memory:")
    expected = db.execute("SELECT julianday(?)", (text,)).fetchone()[0]
    ijd = datetime_ijd(text)
    assert (None if ijd is None else ijd / 86400000.0) == expected, text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(-50, 50), st.floats(-50, 50, allow_nan=False),
                          st.booleans(), st.sampled_from(["a", "b", "10", "2024-03-01T10:00:00Z"]),
                          st.none()), max_size=4),
       st.sampled_from(["==", "!=", ">", ">=", "<", "<="]),
       st.sampled_from(["10", "-3.5", "true", "\"a\"", "2024-01-01T00:00:00Z"]))
def test_random_values_sql_equals_python(values: list, op: str, literal: str) -> None:
    docs = [entity(i, v=prop(v)) for i, v in enumerate(values)] + [entity(9, v=prop(values))]
    node = parse_q(f"v{op}{literal}")
    where, params = to_sql(node, expand)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE entities (id TEXT, doc TEXT)")
    db.executemany("INSERT INTO entities VALUES (?, ?)",
                   [(e["id"], orjson.dumps(e).decode()) for e in docs])
    in_sql = {r[0] for r in db.execute(f"SELECT id FROM entities WHERE {where}", params)}
    in_python = {e["id"] for e in docs if node.matches(e, expand)}
    assert in_sql == in_python
