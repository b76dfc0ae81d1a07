"""X-Twilio-Signature: Twilio's published test vectors and agreement with the official validator."""

import string

from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from textrelay.providers.twilio_signature import (
    body_sha256,
    compute_signature,
    url_variants,
    validate_signature,
)

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
JSON_BODY = '{"property": "value", "boolean": true}'


def test_signature_matches_twilio_vector_as_given() -> None:
    assert compute_signature(TOKEN, URL, PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_signature_matches_twilio_vectors_with_default_ports() -> None:
    assert compute_signature(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS) == (
        "kvajT1Ptam85bY51eRf/AJRuM3w="
    )
    assert compute_signature(TOKEN, "http://mycompany.com:80/myapp.php?foo=1&bar=2", PARAMS) == (
        "0ZXoZLH/DfblKGATFgpif+LLRf4="
    )


def test_validation_accepts_url_with_or_without_default_port() -> None:
    assert validate_signature(TOKEN, URL, PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=")
    assert validate_signature(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS,
                              "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert validate_signature(TOKEN, "http://mycompany.com/myapp.php?foo=1&bar=2", PARAMS,
                              "0ZXoZLH/DfblKGATFgpif+LLRf4=")


def test_validation_rejects_tampered_params_wrong_token_and_missing_signature() -> None:
    assert not validate_signature(TOKEN, URL, {**PARAMS, "Digits": "1235"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not validate_signature("54321", URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not validate_signature(TOKEN, URL, PARAMS, "")
    assert not validate_signature(TOKEN, URL, PARAMS, None)
    assert not validate_signature(TOKEN, URL, PARAMS, "ünïcode")


def test_json_body_signature_matches_twilio_vector_and_checks_body_hash() -> None:
    url = f"{URL}&bodySHA256={body_sha256(JSON_BODY)}"
    assert body_sha256(JSON_BODY) == "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    assert compute_signature(TOKEN, url) == "a9nBmqA0ju/hNViExpshrM61xv4="
    assert validate_signature(TOKEN, url, JSON_BODY, "a9nBmqA0ju/hNViExpshrM61xv4=")
    assert validate_signature(TOKEN, url, JSON_BODY.encode(), "a9nBmqA0ju/hNViExpshrM61xv4=")
    assert not validate_signature(TOKEN, url, JSON_BODY + " ", "a9nBmqA0ju/hNViExpshrM61xv4=")
    assert not validate_signature(TOKEN, URL, JSON_BODY, compute_signature(TOKEN, URL))


def test_repeated_keys_sign_sorted_unique_values() -> None:
    one = compute_signature(TOKEN, URL, {"MediaUrl": ["b", "a", "a"], "To": "+1"})
    assert one == compute_signature(TOKEN, URL, {"MediaUrl": ["a", "b"], "To": ["+1"]})


def test_url_variants_keep_credentials_and_strip_any_port() -> None:
    assert url_variants("https://user:pw@example.com:8443/hook?x=1") == [
        "https://user:pw@example.com/hook?x=1",
        "https://user:pw@example.com:8443/hook?x=1",
    ]
    assert url_variants("http://example.com/hook") == ["http://example.com/hook", "http://example.com:80/hook"]


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
_key = st.text(alphabet=string.ascii_letters + string.digits + "[]_.", min_size=1, max_size=12)
_urls = st.sampled_from([
    "https://example.com/hooks/twilio",
    "https://example.com:443/hooks/twilio?a=1&b=%20",
    "http://127.0.0.1:8080/hooks/status?id=42",
    "http://example.com/hooks",
    "https://example.org/x?y=é",
])


@settings(max_examples=200, deadline=None)
@given(token=_text.filter(bool), url=_urls, params=st.dictionaries(_key, _text, max_size=8))
def test_signature_agrees_with_official_validator(token: str, url: str, params: dict[str, str]) -> None:
    official = RequestValidator(token)
    ours = compute_signature(token, url, params)
    assert ours == official.compute_signature(url, params)
    assert official.validate(url, params, ours)
    assert validate_signature(token, url, params, official.compute_signature(url, params))
    for variant in url_variants(url):
        signed = official.compute_signature(variant, params)
        assert validate_signature(token, url, params, signed) == official.validate(url, params, signed)


class _MultiDict(dict):
    def getall(self, key: str) -> list[str]:
        return self[key]


@settings(max_examples=100, deadline=None)
@given(params=st.dictionaries(_key, st.lists(_text, min_size=1, max_size=4), max_size=5))
def test_repeated_values_agree_with_official_validator(params: dict[str, list[str]]) -> None:
    official = RequestValidator("secret-token")
    assert compute_signature("secret-token", URL, params) == official.compute_signature(URL, _MultiDict(params))


def test_multidicts_from_web_frameworks_sign_like_lists() -> None:
    from multidict import MultiDict
    from starlette.datastructures import FormData

    pairs = [("MediaUrl", "b"), ("To", "+1"), ("MediaUrl", "a")]
    expected = compute_signature(TOKEN, URL, {"MediaUrl": ["a", "b"], "To": "+1"})
    assert compute_signature(TOKEN, URL, MultiDict(pairs)) == expected
    assert compute_signature(TOKEN, URL, FormData(pairs)) == expected
    assert validate_signature(TOKEN, URL, FormData(pairs), expected)
