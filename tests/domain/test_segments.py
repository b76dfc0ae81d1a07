"""Segment counting: GSM-7 160/153 with double-width extension characters, UCS-2 70/67 in UTF-16 units."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textrelay.domain.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_BODY_CHARACTERS,
    SegmentInfo,
    count_segments,
)


def test_default_alphabet_has_127_characters_plus_escape() -> None:
    assert len(GSM7_BASIC) == 127
    assert set("äöñüàéèùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉÄÖÑÜ§¿¡£¥¤\n\r @$") <= GSM7_BASIC
    assert GSM7_EXTENSION == frozenset("^{}\\[~]|€\f")
    assert not GSM7_BASIC & GSM7_EXTENSION


def test_max_body_characters_is_1500() -> None:
    assert MAX_BODY_CHARACTERS == 1500


def test_empty_text_costs_no_segment() -> None:
    assert count_segments("") == SegmentInfo("GSM-7", 0, 0, 0)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_text_fits_160_alone_and_153_per_part(length: int, segments: int) -> None:
    info = count_segments("a" * length)
    assert (info.encoding, info.segments, info.characters, info.units) == ("GSM-7", segments, length, length)


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION))
def test_gsm7_extension_character_counts_two_septets(char: str) -> None:
    info = count_segments("a" * 158 + char)
    assert (info.encoding, info.units, info.characters, info.segments) == ("GSM-7", 160, 159, 1)
    assert count_segments("a" * 159 + char).segments == 2


def test_gsm7_extension_character_never_straddles_part_boundary() -> None:
    # 152 + 2 = 154 septets > 153: the euro moves whole into part two.
    text = "a" * 152 + "€" + "a" * 8
    info = count_segments(text)
    assert info.units == 162
    assert info.segments == 2
    # Filling part two exactly: 152 (part one, one septet wasted) + 153.
    assert count_segments("a" * 152 + "€" + "a" * 151).segments == 2
    assert count_segments("a" * 152 + "€" + "a" * 152).segments == 3


def test_all_extension_characters_pack_76_per_part() -> None:
    assert count_segments("€" * 80).segments == 1
    assert count_segments("€" * 81).segments == 2  # 162 septets
    assert count_segments("€" * 153).segments == 3  # 76 + 76 + 1


def test_accented_letters_of_default_alphabet_stay_gsm7() -> None:
    info = count_segments("Olá, são três irmãs? ¿Qué tal? Straße Ñandú Øre")
    assert info.encoding == "UCS-2"  # á, ã, ê are not in the default alphabet
    assert count_segments("Straße Ñandù, Øre, Åse, ÆØÅ, ¿Où? àéèùìò ΔΦΓΛΩΠΨΣΘΞ §¡£¥¤").encoding == "GSM-7"


def test_lowercase_c_cedilla_is_not_gsm7() -> None:
    assert count_segments("Ç").encoding == "GSM-7"
    assert count_segments("ç").encoding == "UCS-2"


@pytest.mark.parametrize(
    ("length", "segments"),
    [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_text_fits_70_alone_and_67_per_part(length: int, segments: int) -> None:
    info = count_segments("ж" * length)
    assert (info.encoding, info.segments, info.units, info.characters) == ("UCS-2", segments, length, length)


def test_one_non_gsm_character_switches_whole_text_to_ucs2() -> None:
    info = count_segments("a" * 69 + "ć")
    assert (info.encoding, info.segments) == ("UCS-2", 1)
    assert count_segments("a" * 70 + "ć").segments == 2


def test_emoji_counts_two_utf16_units() -> None:
    info = count_segments("👍" * 35)
    assert (info.encoding, info.units, info.characters, info.segments) == ("UCS-2", 70, 35, 1)
    assert count_segments("👍" * 36).segments == 2


def test_emoji_surrogate_pair_never_straddles_part_boundary() -> None:
    # 134 units would fill two parts exactly, but the emoji cannot start at unit 67 of part one:
    # part one holds 66, part two the emoji and 65 more, part three the last unit.
    info = count_segments("ж" * 66 + "👍" + "ж" * 66)
    assert (info.units, info.characters, info.segments) == (134, 133, 3)
    assert count_segments("ж" * 65 + "👍" + "ж" * 67).segments == 2


def test_characters_count_graphemes_not_code_points() -> None:
    assert count_segments("e\u0301").characters == 1
    assert count_segments("🇫🇷🇩🇪").characters == 2
    assert count_segments("👨\u200d👩\u200d👧\u200d👦").characters == 1
    assert count_segments("👍🏽").characters == 1
    assert count_segments("\r\n").characters == 1
    assert count_segments("한국어").characters == 3


def _reference_segments(text: str) -> tuple[str, int, int]:
    """Straightforward per-character packing, to check the optimised counting against."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        encoding, widths, single, per_part = "GSM-7", [2 if ch in GSM7_EXTENSION else 1 for ch in text], 160, 153
    else:
        encoding, widths, single, per_part = "UCS-2", [2 if ord(ch) > 0xFFFF else 1 for ch in text], 70, 67
    units = sum(widths)
    if units == 0:
        return encoding, 0, 0
    if units <= single:
        return encoding, 1, units
    parts, used = 1, 0
    for width in widths:
        if used + width > per_part:
            parts, used = parts + 1, 0
        used += width
    return encoding, parts, units


_alphabets = st.sampled_from([
    "a€^{",
    "".join(sorted(GSM7_BASIC)) + "€[]",
    "abcж",
    "ab👍",
    "a€👍é\u0301",
])


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_segment_count_matches_reference_packing(data: st.DataObject) -> None:
    alphabet = data.draw(_alphabets)
    text = data.draw(st.text(alphabet=alphabet, max_size=700))
    info = count_segments(text)
    assert (info.encoding, info.segments, info.units) == _reference_segments(text)
    assert info.characters <= len(text)
