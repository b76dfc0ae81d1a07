"""Personalisation: message bodies are Jinja2 templates rendered against a profile.

Templates are written by admins and developers; profile values are data. So:

- the environment is sandboxed (no attribute access to internals such as ``__class__``),
  ``*``/``**`` are capped so a template cannot build a gigabyte string, and a template cannot run
  without bound: no macros, no loops inside loops, ``range()`` at most 10,000 steps per message;
- a variable the profile lacks is an error (``StrictUndefined``), never an empty string sent;
- autoescape is off (an SMS is plain text, not HTML);
- a profile value is printed as it is: a value that itself contains ``{{ ... }}`` is text, it is
  never evaluated a second time.

The profile is exposed as ``profile``: ``Hi {{profile.firstName}}``,
``{% if profile.tier == "gold" %}...{% endif %}``, ``{{ profile.city | default("there") }}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import new_context
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["MissingVariable", "TemplateError", "TemplateSyntax", "UnsafeTemplate", "compile_template",
           "render", "uses_variables"]

# The longest string a template may build with ``*`` (bodies are at most 1,500 characters anyway).
_MAX_PRODUCT = 10_000


class TemplateError(ValueError):
    """A template that cannot be rendered; ``str()`` says why in words a user understands."""


class TemplateSyntax(TemplateError):
    def __init__(self, message: str, line: int | None) -> None:
        self.line = line
        where = f" on line {line}" if line else ""
        super().__init__(f"template syntax error{where}: {message}")


class MissingVariable(TemplateError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"missing template variable {name}")


class UnsafeTemplate(TemplateError):
    def __init__(self, message: str) -> None:
        super().__init__(f"the template does something not allowed: {message}")


class _Profile(dict):  # type: ignore[type-arg]
    """The top-level profile, so a missing key can be named ``profile.<key>``."""


class _Missing(StrictUndefined):
    """StrictUndefined that reports which variable was missing, with its ``profile.`` path."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        name = self._undefined_name
        obj = self._undefined_obj
        if self._undefined_hint and "unsafe" in self._undefined_hint:
            raise UnsafeTemplate(self._undefined_hint)
        if name is None:
            raise MissingVariable(self._undefined_hint or "unknown")
        if isinstance(obj, _Profile):
            raise MissingVariable(f"profile.{name}")
        if obj is not None and not isinstance(obj, Mapping):
            raise MissingVariable(str(name))
        raise MissingVariable(str(name) if obj is None else f"{name} (inside profile)")

    __str__ = __iter__ = __len__ = __eq__ = __ne__ = __bool__ = __hash__ = _fail_with_undefined_error  # type: ignore[assignment]
    __lt__ = __le__ = __gt__ = __ge__ = __contains__ = __getitem__ = __call__ = _fail_with_undefined_error  # type: ignore[assignment]
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail_with_undefined_error  # type: ignore[assignment]


class _Environment(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise SecurityError("exponent too large")
            return left**right
        result_size = 0
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                result_size = len(seq) * times
        if result_size > _MAX_PRODUCT:
            raise SecurityError("the result of '*' would be too long")
        return left * right


_ENV = _Environment(undefined=_Missing, autoescape=False, keep_trailing_newline=True, auto_reload=False,
                    cache_size=0)


def _budgeted_range(*args: int) -> range:
    """``range`` that draws on the render's iteration budget, so loops cannot spin for minutes."""
    values = range(*args)
    budget = _BUDGET.get(None)
    if budget is not None:
        budget[0] -= len(values)
        if budget[0] < 0:
            raise SecurityError(f"range() would loop more than {MAX_RANGE_ITERATIONS} times in one message")
    return values


_ENV.globals["range"] = _budgeted_range
_BUDGET: ContextVar[list[int]] = ContextVar("textrelay_template_budget")
MAX_RANGE_ITERATIONS = 10_000
# What a message template has no use for, and what would let one template run without bound:
# macros (recursion), loops inside loops, and loading other templates.
_FORBIDDEN = {nodes.Macro: "macro", nodes.CallBlock: "call", nodes.Include: "include", nodes.Extends: "extends",
              nodes.Import: "import", nodes.FromImport: "from ... import"}


def _check_shape(tree: nodes.Template) -> None:
    for kind, what in _FORBIDDEN.items():
        node = next(tree.find_all(kind), None)
        if node is not None:
            raise TemplateSyntax(f"'{{% {what} %}}' is not allowed in a message template", node.lineno)
    for loop in tree.find_all(nodes.For):
        if loop.recursive:
            raise TemplateSyntax("recursive loops are not allowed in a message template", loop.lineno)
        for part in loop.body:
            inner = part if isinstance(part, nodes.For) else next(part.find_all(nodes.For), None)
            if inner is not None:
                raise TemplateSyntax("loops inside loops are not allowed in a message template", inner.lineno)


@lru_cache(maxsize=1024)
def compile_template(source: str) -> Template:
    """The compiled template (cached per source text), or :class:`TemplateSyntax`."""
    try:
        _check_shape(_ENV.parse(source))
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateSyntax(exc.message or "invalid template", exc.lineno) from None


@lru_cache(maxsize=1024)
def _globals(template: Template) -> dict[str, Any]:
    return dict(template.globals)


def render(source: str, profile: Mapping[str, Any] | None) -> str:
    """``source`` rendered with ``profile``; raises a :class:`TemplateError` subclass on failure."""
    template = compile_template(source)
    token = _BUDGET.set([MAX_RANGE_ITERATIONS])
    try:
        # Template.render() without copying the environment's globals for every message.
        context = new_context(template.environment, template.name, template.blocks,
                              {**_globals(template), "profile": _Profile(profile or {})}, shared=True)
        return template.environment.concat(template.root_render_func(context))  # type: ignore[attr-defined]
    except TemplateError:
        raise
    except UndefinedError as exc:
        raise MissingVariable(str(exc.message or "unknown")) from None
    except SecurityError as exc:
        raise UnsafeTemplate(str(exc)) from None
    except TemplateSyntaxError as exc:
        raise TemplateSyntax(exc.message or "invalid template", exc.lineno) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError, RecursionError) as exc:
        raise UnsafeTemplate(f"{type(exc).__name__}: {exc}") from None
    finally:
        _BUDGET.reset(token)


def uses_variables(source: str) -> bool:
    """True when the text has template markup at all (plain text renders to itself)."""
    return "{{" in source or "{%" in source or "{#" in source
