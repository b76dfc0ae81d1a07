"""Payload templates: validation with locations, and rendering that no value can break or extend."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textrelay.domain.payloads import PayloadValues, compile_template
from textrelay.errors import ValidationFailed

TEMPLATE = """{
  "from": "{{fromNumber}}",
  "to": "{{toNumber}}",
  "text": "{{message}}",
  "greeting": "Hello {{profile.firstName}}, {{message}}",
  "ref": "{{messageId}}",
  "rcs": {{rcs}}
}"""
INJECTION = '"},"admin":true,"x":"'


def values(message: str, **kw) -> PayloadValues:
    return PayloadValues(from_number="+15005550006", to_number="+15551234567", message=message,
                         message_id="msg_1", **kw)


def test_injection_string_stays_one_string_value_and_adds_no_field():
    template = compile_template(TEMPLATE)
    payload = json.loads(template.render(values(INJECTION, profile={"firstName": INJECTION})))
    assert set(payload) == {"from", "to", "text", "greeting", "ref", "rcs"}
    assert payload["text"] == INJECTION
    assert payload["greeting"] == f"Hello {INJECTION}, {INJECTION}"
    assert "admin" not in payload


def test_placeholders_in_values_are_not_expanded():
    payload = json.loads(compile_template(TEMPLATE).render(values("{{toNumber}} {{rcs}}")))
    assert payload["text"] == "{{toNumber}} {{rcs}}"


def test_bare_rcs_placeholder_inserts_an_object_and_missing_rcs_is_null():
    template = compile_template(TEMPLATE)
    assert json.loads(template.render(values("x", rcs={"text": "hi"})))["rcs"] == {"text": "hi"}
    assert json.loads(template.render(values("x")))["rcs"] is None


@settings(max_examples=300, deadline=None)
@given(message=st.text(), name=st.text(), number=st.text(max_size=20))
def test_any_values_render_valid_json_with_exactly_the_template_fields(message, name, number):
    template = compile_template(TEMPLATE)
    raw = template.render(PayloadValues(from_number=number, to_number=number, message=message,
                                        message_id=name, profile={"firstName": name}))
    payload = json.loads(raw.decode("utf-8"))
    assert list(payload) == ["from", "to", "text", "greeting", "ref", "rcs"]
    assert payload["text"] == message
    assert payload["greeting"] == f"Hello {name}, {message}"
    assert payload["to"] == number


def test_template_missing_required_placeholders_is_refused_naming_them():
    with pytest.raises(ValidationFailed) as err:
        compile_template('{"to": "{{toNumber}}"}')
    assert err.value.errors[0]["field"] == "payload_template"
    assert "{{fromNumber}}" in err.value.detail and "{{message}}" in err.value.detail


def test_invalid_json_template_reports_line_and_column():
    with pytest.raises(ValidationFailed) as err:
        compile_template('{"from": "{{fromNumber}}",\n "to": {{toNumber}},\n "text": "{{message}}",,\n}')
    error = err.value.errors[0]
    assert (error["line"], error["column"]) == (3, 24)
    assert "line 3, column 24" in error["message"]


@pytest.mark.parametrize("template, reason", [
    ('{"a": "{{fromNumber}}", "b": "{{toNumber}}", "c": "{{message}}", "d": "{{secret}}"}', "unknown placeholder"),
    ('{"a": "{{fromNumber}}", "b": "{{toNumber}}", "{{message}}": 1}', "not allowed in keys"),
    ('{"a": "{{fromNumber}}", "b": "{{toNumber}}", "c": "{{message}}", "r": "x{{rcs}}"}', "must stand alone"),
    ('"{{fromNumber}}{{toNumber}}{{message}}"', "object or array"),
    ("   ", "required"),
])
def test_bad_templates_are_refused_with_a_reason(template, reason):
    with pytest.raises(ValidationFailed) as err:
        compile_template(template)
    assert reason in err.value.detail
