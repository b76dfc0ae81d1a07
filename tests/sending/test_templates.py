"""Personalisation (pure): sandboxed Jinja2 against a profile."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from textrelay.domain.templates import MissingVariable, TemplateSyntax, UnsafeTemplate, render


def test_profile_variables_conditionals_and_defaults_render():
    body = 'Hi {{ profile.firstName }}{% if profile.tier == "gold" %}, gold member{% endif %} in ' \
           '{{ profile.city | default("your city") }}'
    assert render(body, {"firstName": "Ann", "tier": "gold"}) == "Hi Ann, gold member in your city"
    assert render(body, {"firstName": "Bo", "tier": "basic", "city": "Porto"}) == "Hi Bo in Porto"


def test_missing_variable_is_named_never_rendered_empty():
    with pytest.raises(MissingVariable) as exc:
        render("Hi {{ profile.firstName }}", {"lastName": "X"})
    assert exc.value.name == "profile.firstName"
    with pytest.raises(MissingVariable):
        render("{% if profile.tier == 'gold' %}x{% endif %}", {})


def test_syntax_error_names_the_line():
    with pytest.raises(TemplateSyntax) as exc:
        render("one\ntwo\n{% if profile.x %}never closed", {"x": 1})
    assert exc.value.line == 3 and "line 3" in str(exc.value)


@given(st.text(max_size=60))
def test_any_profile_value_is_printed_literally(value):
    assert render("<{{ profile.v }}>", {"v": value}) == f"<{value}>"


def test_template_injection_in_a_profile_value_is_not_evaluated():
    attack = "{{ ''.__class__.__mro__[1].__subclasses__() }}{% for i in range(3) %}x{% endfor %}"
    assert render("Hello {{ profile.name }}", {"name": attack}) == "Hello " + attack


@pytest.mark.parametrize("body", [
    "{{ ''.__class__.__mro__ }}",
    "{{ profile.__class__ }}",
    "{{ 'a' * 100000000 }}",
    "{{ 9 ** 9999999 }}",
    "{% for i in range(20000) %}{% endfor %}",
    "{% for i in range(6000) %}{% endfor %}{% for i in range(6000) %}{% endfor %}",
])
def test_unsafe_or_unbounded_templates_are_refused(body):
    with pytest.raises(UnsafeTemplate):
        render(body, {})


@pytest.mark.parametrize("body", [
    "{% for i in range(3) %}{% for j in range(3) %}x{% endfor %}{% endfor %}",
    "{% for x in profile.l recursive %}{{ loop(x) }}{% endfor %}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{% include 'other' %}",
])
def test_shapes_that_could_run_without_bound_are_syntax_errors(body):
    with pytest.raises(TemplateSyntax):
        render(body, {"l": []})


def test_autoescape_is_off_because_sms_is_text():
    assert render("{{ profile.v }}", {"v": "<b>&'\""}) == "<b>&'\""
