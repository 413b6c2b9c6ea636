"""Entity ids are stable URNs built from source keys."""

import pytest

from adapter.ngsi.ids import entity_id, name_key, normalise_name, slug


def test_entity_id_is_an_ngsi_ld_urn_of_the_type_and_source_key():
    assert entity_id("AirQualityObserved", "smartburgas", "1") == \
        "urn:ngsi-ld:AirQualityObserved:smartburgas:1"


def test_unsafe_characters_are_percent_encoded_so_the_id_stays_a_uri():
    eid = entity_id("Camera", "cctv", "a b/c")
    assert eid == "urn:ngsi-ld:Camera:cctv:a%20b%2Fc"


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_keys_are_refused(bad):
    with pytest.raises(ValueError, match="empty key"):
        entity_id("Camera", bad)


def test_invalid_type_names_are_refused():
    with pytest.raises(ValueError, match="not a valid NGSI-LD type"):
        entity_id("Air Quality", "1")


def test_name_variants_seen_in_the_feeds_give_the_same_key():
    # Stray spaces, typographic quotes, Latin homoglyphs inside Cyrillic words (feed reference §5, §8, §9).
    assert normalise_name("Цвeтни метали (опаковки)") == normalise_name("Цветни метали (опаковки)")
    assert normalise_name("Морска Градина,  „Приморска“ алея ") == normalise_name('Морска Градина, "Приморска" алея')
    assert normalise_name("ул.Цар Симеон I-ви") == normalise_name("ул.Цар Симеон І-ви")


def test_name_key_is_a_readable_transliterated_slug_with_a_rounded_position():
    key = name_key("бул.\"Демокрация\", пред ІІІ-та  поликлиника ", 27.476912, 42.501549)
    assert key == "bul-demokratsiya-pred-iii-ta-poliklinika:27.4769,42.5015"
    assert slug("Сарафово ") == "sarafovo"
    assert name_key("", 27.0, 42.0) == "unnamed:27.0000,42.0000"
