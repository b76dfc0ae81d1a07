"""How many SMS segments a text costs, and in which encoding it travels.

A text that uses only the GSM 03.38 default alphabet (3GPP TS 23.038) travels as GSM-7:
160 septets in one SMS, or 153 per part once a user data header is needed. The extension
characters ``^ { } \\ [ ~ ] | €`` and form feed take two septets (escape + character), and
a part never ends between the escape and its character.

Any other character switches the whole text to UCS-2: 70 UTF-16 code units in one SMS, or
67 per part. Astral characters (most emoji) take two units, and a part never splits a
surrogate pair. Grapheme clusters may still be split across parts, as handsets do.

The empty text costs no segment (``segments == 0``). A body-less MMS is one message for
billing, but that is the MMS channel's concern, not this count's.
"""

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "MAX_BODY_CHARACTERS",
    "SegmentInfo",
    "count_segments",
    "grapheme_count",
    "is_gsm7",
]

MAX_BODY_CHARACTERS = 1500
"""The longest body (in characters, after personalization) that textrelay accepts."""

GSM7_SINGLE = 160
GSM7_PER_PART = 153
UCS2_SINGLE = 70
UCS2_PER_PART = 67

# The default alphabet in code order 0x00-0x7F, with 0x1B (escape to the extension table) left out.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ" "ÆæßÉ"  # 0x1B, the escape, sits between Ξ and Æ
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# The default extension table: each costs an escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """The cost of one text.

    ``characters`` is the length a person sees (grapheme clusters); ``units`` is what the
    carrier counts: septets for GSM-7 (extension characters count 2), UTF-16 code units
    for UCS-2.
    """

    encoding: Encoding
    segments: int
    characters: int
    units: int


_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM-7 default alphabet or its extension."""
    return _GSM7_ALL.issuperset(text)


def count_segments(text: str) -> SegmentInfo:
    """Count the segments, characters and encoding units of ``text`` as a carrier would."""
    if is_gsm7(text):
        # No GSM-7 character combines with another, so only CR LF joins two into one grapheme.
        doubles = sum(text.count(ch) for ch in GSM7_EXTENSION)
        units = len(text) + doubles
        segments = _pack(text, units, doubles, GSM7_SINGLE, GSM7_PER_PART, GSM7_EXTENSION.__contains__)
        return SegmentInfo("GSM-7", segments, len(text) - text.count("\r\n"), units)
    units = len(text.encode("utf-16-le")) // 2
    segments = _pack(text, units, units - len(text), UCS2_SINGLE, UCS2_PER_PART, _is_astral)
    return SegmentInfo("UCS-2", segments, grapheme_count(text), units)


def _is_astral(ch: str) -> bool:
    return ord(ch) > 0xFFFF


def _pack(
    text: str, units: int, doubles: int, single: int, per_part: int, is_double: Callable[[str], bool]
) -> int:
    """Parts needed when no two-unit character may straddle a part boundary."""
    if units == 0:
        return 0
    if units <= single:
        return 1
    if doubles == 0:
        return -(-units // per_part)
    parts, used = 1, 0
    for ch in text:
        width = 2 if is_double(ch) else 1
        if used + width > per_part:
            parts += 1
            used = 0
        used += width
    return parts


# Grapheme clusters, approximately as UAX #29 defines them: enough for what people type in
# messages (combining accents, emoji with skin tones, ZWJ sequences, flags, keycaps, Hangul).
_ZWJ = "\u200d"


def _is_extend(ch: str) -> bool:
    code = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
        or code == 0x200C
    )


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _hangul_kind(ch: str) -> str:
    code = ord(ch)
    if 0x1100 <= code <= 0x115F or 0xA960 <= code <= 0xA97C:
        return "L"
    if 0x1160 <= code <= 0x11A7 or 0xD7B0 <= code <= 0xD7C6:
        return "V"
    if 0x11A8 <= code <= 0x11FF or 0xD7CB <= code <= 0xD7FB:
        return "T"
    if 0xAC00 <= code <= 0xD7A3:
        return "LV" if (code - 0xAC00) % 28 == 0 else "LVT"
    return ""


def grapheme_count(text: str) -> int:
    """The number of user-perceived characters in ``text``."""
    count = 0
    previous = ""
    regional_run = 0
    for ch in text:
        if previous and not _breaks_between(previous, ch, regional_run):
            regional_run = regional_run + 1 if _is_regional_indicator(ch) else 0
            previous = ch
            continue
        count += 1
        regional_run = 1 if _is_regional_indicator(ch) else 0
        previous = ch
    return count


def _breaks_between(previous: str, ch: str, regional_run: int) -> bool:
    if previous == "\r" and ch == "\n":
        return False
    if previous in "\r\n" or ch in "\r\n":
        return True
    if ch == _ZWJ or _is_extend(ch):
        return False
    if previous == _ZWJ:
        return False
    if _is_regional_indicator(previous) and _is_regional_indicator(ch):
        return regional_run % 2 == 0
    before, after = _hangul_kind(previous), _hangul_kind(ch)
    if before == "L" and after in ("L", "V", "LV", "LVT"):
        return False
    if before in ("LV", "V") and after in ("V", "T"):
        return False
    if before in ("LVT", "T") and after == "T":
        return False
    return True
