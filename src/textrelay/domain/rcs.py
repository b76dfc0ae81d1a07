"""RCS rich content: the model a message carries, and the JSON a provider receives via ``{{rcs}}``.

Content types follow the journey product's RCS designer: text, media (URL + thumbnail), card
(title, description, media), carousel (2+ cards; card width, media height) and location (latitude,
longitude, name), each with suggested actions (reply, open URL, dial, view location). Every RCS
message has a ``fallback_text``, sent as SMS when the recipient cannot take RCS.

:meth:`RcsContent.provider_json` renders the content in the shape of the RCS Business Messaging
``AgentContentMessage`` (``richCard.standaloneCard.cardContent``, ``suggestions[].reply`` /
``action.openUrlAction``…), which RCS providers take as-is or map one to one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from textrelay.errors import ValidationFailed

MAX_TEXT = 3072
MAX_FALLBACK = 1500


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.lower().startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value


class SuggestedAction(_Model):
    type: Literal["reply", "open_url", "dial", "view_location"]
    label: str = Field(min_length=1, max_length=25)
    postback_data: str | None = Field(default=None, max_length=2048)
    url: str | None = None
    phone_number: str | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    location_name: str | None = Field(default=None, max_length=100)

    _url = field_validator("url")(_http_url)

    @model_validator(mode="after")
    def _needs(self) -> SuggestedAction:
        if self.type == "open_url" and not self.url:
            raise ValueError("an open_url action needs a url")
        if self.type == "dial" and not self.phone_number:
            raise ValueError("a dial action needs a phone_number")
        if self.type == "view_location" and (self.latitude is None or self.longitude is None):
            raise ValueError("a view_location action needs latitude and longitude")
        return self

    def provider_json(self) -> dict[str, Any]:
        postback = self.postback_data or self.label
        if self.type == "reply":
            return {"reply": {"text": self.label, "postbackData": postback}}
        action: dict[str, Any] = {"text": self.label, "postbackData": postback}
        if self.type == "open_url":
            action["openUrlAction"] = {"url": self.url}
        elif self.type == "dial":
            action["dialAction"] = {"phoneNumber": self.phone_number}
        else:
            view: dict[str, Any] = {"latLong": {"latitude": self.latitude, "longitude": self.longitude}}
            if self.location_name:
                view["label"] = self.location_name
            action["viewLocationAction"] = view
        return {"action": action}


class Media(_Model):
    url: str = Field(min_length=1, max_length=2048)
    thumbnail_url: str | None = Field(default=None, max_length=2048)

    _urls = field_validator("url", "thumbnail_url")(_http_url)

    def content_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"fileUrl": self.url}
        if self.thumbnail_url:
            info["thumbnailUrl"] = self.thumbnail_url
        return info


class Card(_Model):
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    media: Media | None = None
    suggestions: list[SuggestedAction] = Field(default_factory=list, max_length=4)

    @model_validator(mode="after")
    def _not_empty(self) -> Card:
        if not (self.title or self.description or self.media):
            raise ValueError("a card needs a title, a description or media")
        return self

    def provider_json(self, media_height: str) -> dict[str, Any]:
        content: dict[str, Any] = {}
        if self.title:
            content["title"] = self.title
        if self.description:
            content["description"] = self.description
        if self.media:
            content["media"] = {"height": media_height.upper(), "contentInfo": self.media.content_info()}
        if self.suggestions:
            content["suggestions"] = [s.provider_json() for s in self.suggestions]
        return content


class Carousel(_Model):
    card_width: Literal["small", "medium"] = "medium"
    media_height: Literal["short", "medium", "tall"] = "medium"
    cards: list[Card] = Field(min_length=2, max_length=10)


class Location(_Model):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = Field(default=None, max_length=100)


class RcsContent(_Model):
    """One RCS message. The part matching ``type`` is required; the others must be absent."""

    type: Literal["text", "media", "card", "carousel", "location"]
    text: str | None = Field(default=None, max_length=MAX_TEXT)
    media: Media | None = None
    card: Card | None = None
    card_orientation: Literal["vertical", "horizontal"] = "vertical"
    media_height: Literal["short", "medium", "tall"] = "medium"
    carousel: Carousel | None = None
    location: Location | None = None
    suggestions: list[SuggestedAction] = Field(default_factory=list, max_length=11)
    fallback_text: str = Field(min_length=1, max_length=MAX_FALLBACK)

    @field_validator("fallback_text")
    @classmethod
    def _fallback_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("fallback_text is required")
        return value

    @model_validator(mode="after")
    def _parts_match_type(self) -> RcsContent:
        parts = {"media": self.media, "card": self.card, "carousel": self.carousel, "location": self.location}
        if self.type == "text":
            if not self.text:
                raise ValueError("a text message needs text")
        elif parts[self.type] is None:
            raise ValueError(f"a {self.type} message needs '{self.type}'")
        extra = [name for name, value in parts.items() if value is not None and name != self.type]
        if extra:
            raise ValueError(f"a {self.type} message cannot also have " + ", ".join(extra))
        return self

    def provider_json(self) -> dict[str, Any]:
        """The content as the provider receives it through ``{{rcs}}`` (no fallback text: that is ours)."""
        body: dict[str, Any] = {}
        if self.type == "text":
            body["text"] = self.text
        elif self.type == "media":
            assert self.media is not None
            body["contentInfo"] = self.media.content_info()
        elif self.type == "card":
            assert self.card is not None
            body["richCard"] = {"standaloneCard": {
                "cardOrientation": self.card_orientation.upper(),
                "cardContent": self.card.provider_json(self.media_height)}}
        elif self.type == "carousel":
            assert self.carousel is not None
            body["richCard"] = {"carouselCard": {
                "cardWidth": self.carousel.card_width.upper(),
                "cardContents": [c.provider_json(self.carousel.media_height) for c in self.carousel.cards]}}
        else:
            assert self.location is not None
            location: dict[str, Any] = {"latLong": {"latitude": self.location.latitude,
                                                    "longitude": self.location.longitude}}
            if self.location.name:
                location["label"] = self.location.name
            body["location"] = location
        if self.text and self.type != "text":
            body["text"] = self.text
        if self.suggestions:
            body["suggestions"] = [s.provider_json() for s in self.suggestions]
        return body


def parse(data: Any, field: str = "rcs") -> RcsContent:
    """Validate RCS content; 422 naming each offending field (``rcs.carousel.cards`` …)."""
    try:
        return RcsContent.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in (field, *err.get("loc", ())))
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            errors.append({"field": loc, "message": "unknown field" if err.get("type") == "extra_forbidden" else msg})
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]), errors=errors) from None
