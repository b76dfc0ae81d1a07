"""Twilio's ``X-Twilio-Signature``: compute it (the simulator signs) and check it (our webhooks verify).

The signature is ``base64(HMAC-SHA1(auth_token, url + concatenated params))`` where ``url`` is the
exact URL Twilio requested (query string included) and the params are the form fields, keys in
code-point order, each key followed by each of its values (sorted and de-duplicated) without
separators. A request with a JSON body is signed over the URL alone, and the URL carries
``bodySHA256=<hex SHA-256 of the raw body>`` in its query string.

Twilio is not consistent about default ports, so, like its own ``RequestValidator``, validation
accepts the URL with every port removed and with the scheme's default port added. Unlike that
validator, credentials in the URL (``user:pass@host``) survive port handling, and a JSON body's
hash is always checked when the URL names one.
"""

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, urlsplit, urlunsplit

__all__ = [
    "SIGNATURE_HEADER",
    "body_sha256",
    "compute_signature",
    "url_variants",
    "validate_signature",
]

SIGNATURE_HEADER = "X-Twilio-Signature"

Params = Mapping[str, str | Iterable[str]]


def _values(value: str | Iterable[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    return list(value)


def _multi_items(params: object) -> dict[str, list[str]]:
    """Normalise a dict, a dict of lists, or a multi-dict (Starlette, aiohttp, Werkzeug) to lists."""
    if params is None:
        return {}
    getall = getattr(params, "getall", None) or getattr(params, "getlist", None)
    result: dict[str, list[str]] = {}
    if getall is not None and hasattr(params, "keys"):
        for key in params.keys():
            result[key] = list(getall(key))
        return result
    for key, value in params.items():  # type: ignore[attr-defined]
        result[key] = _values(value)
    return result


def _signing_string(url: str, params: object) -> str:
    parts = [url]
    for key, values in sorted(_multi_items(params).items()):
        for value in sorted(set(values)):
            parts.append(key)
            parts.append(value)
    return "".join(parts)


def compute_signature(auth_token: str, url: str, params: Params | None = None) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for a request to ``url`` carrying ``params``.

    ``params`` maps each form field to a string or a list of strings (repeated keys); pass
    nothing for a GET or a JSON body.
    """
    digest = hmac.new(
        auth_token.encode("utf-8"), _signing_string(url, params).encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def body_sha256(body: bytes | str) -> str:
    """The hex SHA-256 Twilio puts in ``bodySHA256`` for a JSON body."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return hashlib.sha256(body).hexdigest()


def url_variants(url: str) -> list[str]:
    """``url`` with its port removed and with the scheme's default port added (as Twilio's validator)."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    try:
        port = parts.port
    except ValueError:
        return [url]
    host = hostport[: hostport.rfind(":")] if port is not None else hostport
    without_port = urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}"))
    if port is not None:
        with_port = url
    else:
        default = 443 if parts.scheme == "https" else 80
        with_port = urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}:{default}"))
    return [without_port] if without_port == with_port else [without_port, with_port]


def validate_signature(
    auth_token: str,
    url: str,
    params: Params | bytes | str | None,
    signature: str | None,
) -> bool:
    """True when ``signature`` is what Twilio would send for this request.

    ``params`` is the form fields (a mapping or multi-dict) or, for a JSON request, the raw body
    (``bytes``/``str``): the URL's ``bodySHA256`` must then match the body, and the signature
    covers the URL alone. Comparisons take constant time.
    """
    if not signature or not auth_token:
        return False
    if isinstance(params, bytes | str):
        expected_hash = parse_qs(urlsplit(url).query).get("bodySHA256", [None])[0]
        if expected_hash is None or not hmac.compare_digest(
            expected_hash.lower().encode("utf-8"), body_sha256(params).encode("ascii")
        ):
            return False
        params = None
    given = signature.encode("utf-8")
    valid = False
    for candidate in url_variants(url):
        # No early exit: each variant costs the same whether or not an earlier one matched.
        valid |= hmac.compare_digest(compute_signature(auth_token, candidate, params).encode("ascii"), given)
    return valid
