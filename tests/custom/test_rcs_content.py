"""RCS content: validation of each content type, and the exact JSON a provider receives."""

import json

import pytest

from textrelay.domain import rcs
from textrelay.domain.payloads import PayloadValues, compile_template
from textrelay.errors import ValidationFailed

SUGGESTIONS = [
    {"type": "reply", "label": "Yes", "postback_data": "yes"},
    {"type": "open_url", "label": "Offers", "url": "https://example.com/offers?id=7"},
    {"type": "dial", "label": "Call us", "phone_number": "+15551230000"},
    {"type": "view_location", "label": "Store", "latitude": 48.85, "longitude": 2.35, "location_name": "Paris"},
]
SUGGESTIONS_JSON = [
    {"reply": {"text": "Yes", "postbackData": "yes"}},
    {"action": {"text": "Offers", "postbackData": "Offers", "openUrlAction": {"url": "https://example.com/offers?id=7"}}},
    {"action": {"text": "Call us", "postbackData": "Call us", "dialAction": {"phoneNumber": "+15551230000"}}},
    {"action": {"text": "Store", "postbackData": "Store",
                "viewLocationAction": {"latLong": {"latitude": 48.85, "longitude": 2.35}, "label": "Paris"}}},
]


def card(n: int) -> dict:
    return {"title": f"Card {n}", "description": f"About {n}",
            "media": {"url": f"https://cdn.example.com/{n}.jpg", "thumbnail_url": f"https://cdn.example.com/{n}t.jpg"},
            "suggestions": [{"type": "reply", "label": f"Pick {n}"}]}


def card_json(n: int, height: str) -> dict:
    return {"title": f"Card {n}", "description": f"About {n}",
            "media": {"height": height, "contentInfo": {"fileUrl": f"https://cdn.example.com/{n}.jpg",
                                                        "thumbnailUrl": f"https://cdn.example.com/{n}t.jpg"}},
            "suggestions": [{"reply": {"text": f"Pick {n}", "postbackData": f"Pick {n}"}}]}


def test_card_with_suggestions_renders_exactly_into_the_payload():
    content = rcs.parse({"type": "card", "card": card(1), "media_height": "tall",
                         "suggestions": SUGGESTIONS, "fallback_text": "See card 1"})
    template = compile_template('{"to": "{{toNumber}}", "from": "{{fromNumber}}", "sms": "{{message}}", "rcs": {{rcs}}}')
    payload = json.loads(template.render(PayloadValues("+15005550006", "+15551234567", "See card 1",
                                                       rcs=content.provider_json())))
    assert payload == {"to": "+15551234567", "from": "+15005550006", "sms": "See card 1", "rcs": {
        "richCard": {"standaloneCard": {"cardOrientation": "VERTICAL", "cardContent": card_json(1, "TALL")}},
        "suggestions": SUGGESTIONS_JSON}}


def test_carousel_renders_card_width_media_height_and_every_card():
    content = rcs.parse({"type": "carousel", "fallback_text": "Our picks",
                         "carousel": {"card_width": "small", "media_height": "short", "cards": [card(1), card(2)]}})
    assert content.provider_json() == {"richCard": {"carouselCard": {
        "cardWidth": "SMALL", "cardContents": [card_json(1, "SHORT"), card_json(2, "SHORT")]}}}


def test_text_media_and_location_render():
    assert rcs.parse({"type": "text", "text": "hi", "fallback_text": "hi"}).provider_json() == {"text": "hi"}
    assert rcs.parse({"type": "media", "media": {"url": "https://x.test/a.png"}, "fallback_text": "f"}
                     ).provider_json() == {"contentInfo": {"fileUrl": "https://x.test/a.png"}}
    assert rcs.parse({"type": "location", "location": {"latitude": 1.5, "longitude": -2, "name": "HQ"},
                      "fallback_text": "f"}).provider_json() == {
        "location": {"latLong": {"latitude": 1.5, "longitude": -2.0}, "label": "HQ"}}


@pytest.mark.parametrize("content, field", [
    ({"type": "text", "text": "hi"}, "rcs.fallback_text"),
    ({"type": "text", "text": "x" * 3073, "fallback_text": "f"}, "rcs.text"),
    ({"type": "carousel", "carousel": {"cards": [card(1)]}, "fallback_text": "f"}, "rcs.carousel.cards"),
    ({"type": "card", "fallback_text": "f"}, "rcs"),
    ({"type": "location", "location": {"latitude": 91, "longitude": 0}, "fallback_text": "f"}, "rcs.location.latitude"),
    ({"type": "text", "text": "t", "fallback_text": "f",
      "suggestions": [{"type": "open_url", "label": "Go"}]}, "rcs.suggestions.0"),
    ({"type": "text", "text": "t", "fallback_text": "f", "admin": True}, "rcs.admin"),
])
def test_invalid_rcs_content_is_refused_naming_the_field(content, field):
    with pytest.raises(ValidationFailed) as err:
        rcs.parse(content)
    assert field in [e["field"] for e in err.value.errors]


def test_text_of_3072_characters_is_accepted():
    assert rcs.parse({"type": "text", "text": "x" * 3072, "fallback_text": "f"}).text == "x" * 3072
