"""The sandboxed Jinja renderer for the templated strings staff write in step configs.

A template reads four roots: ``trigger`` (the trigger payload), ``contact``, ``vars`` (workflow variables) and
``steps`` (``steps.<nodeId>.output.<...>``, the outputs of earlier steps). Reading anything missing is an error that
names the full path; ``default`` and ``is defined`` are the ways to read optional values
(``{{ contact.nickname | default(contact.first_name) }}``, ``{% if contact.nickname is defined %}``).
On a mapping, ``a.b`` reads the key ``b`` before any method, so ``trigger.items`` is data, not ``dict.items``.

Filters staff can use:
    datetime(fmt="%Y-%m-%d %H:%M")  an ISO 8601 string or a datetime, formatted with strftime codes:
                                    {{ trigger.starts_at | datetime('%a %d %b, %H:%M') }} -> "Wed 01 May, 18:30"
    date(fmt="%Y-%m-%d")            the same for the date alone: {{ trigger.starts_at | date('%d/%m') }} -> "01/05"
                                    (both format the time as given: no time zone conversion)
    default(value), upper, lower, title, capitalize, trim, truncate(length), length, round(precision),
    int, float, join(separator), replace(old, new)    Jinja's own, unchanged

Limits: at most MAX_OUTPUT characters of output; all ``range()`` calls in one render share a budget of MAX_OUTPUT
numbers; a ``*`` repetition longer than MAX_OUTPUT or a ``**`` power over MAX_OUTPUT bits is refused.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import date, datetime
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing as NO_OBJECT

ROOTS = ("trigger", "contact", "vars", "steps")
MAX_OUTPUT = 100_000
_ROOTS_TEXT = "trigger, contact, vars and steps"
_JINJA_FILTERS = ("default", "upper", "lower", "title", "capitalize", "trim", "truncate", "length", "round", "int",
                  "float", "join", "replace")


class TemplateError(ValueError):
    """A template that cannot be rendered, with a message for the person who wrote it."""

    def __init__(self, message: str, reference: str | None = None):
        super().__init__(message)
        self.message = message
        self.reference = reference


class _MissingError(UndefinedError):
    """A missing value was used; carries it so render() can name its full path."""

    def __init__(self, missing: _Missing, message: str):
        super().__init__(message)
        self.missing = missing


class _Missing(StrictUndefined):
    """StrictUndefined that lets a path go on (so default() covers deep paths) and remembers the segments after it."""

    __slots__ = ("_tail", "_exc")

    def __init__(self, hint=None, obj=NO_OBJECT, name=None, exc=UndefinedError, tail: tuple = ()):
        # Jinja raises self._undefined_exception(message): make that exception carry this object.
        carrying = functools.partial(_MissingError, self) if exc is UndefinedError else exc
        super().__init__(hint, obj, name, carrying)
        self._tail, self._exc = tail, exc

    def __getattr__(self, name: str) -> Any:
        # No attributes, so Jinja's probes (unsafe_callable, jinja_pass_arg) find none; template dots reach
        # __getitem__, as the sandbox falls back to obj[name].
        raise AttributeError(name)

    def __getitem__(self, key: Any) -> _Missing:
        """The same missing value, one segment further along."""
        return _Missing(self._undefined_hint, self._undefined_obj, self._undefined_name, self._exc,
                        self._tail + (key,))


_range_budget: ContextVar[list[int]] = ContextVar("range_budget")


def _budgeted_range(*args: int) -> range:
    """range(), with every range in one render drawing on a shared budget of MAX_OUTPUT numbers."""
    numbers = range(*args)
    try:
        size = len(numbers)
    except OverflowError:  # longer than a C integer can count
        size = MAX_OUTPUT + 1
    budget = _range_budget.get([MAX_OUTPUT])
    budget[0] -= size
    if budget[0] < 0:
        raise TemplateError(f"The template loops too much: its ranges may count at most {MAX_OUTPUT:,} numbers.")
    return numbers


def _too_big(operator: str, left: Any, right: Any) -> bool:
    """Whether a * or ** would build something bigger than a template ever needs."""
    if operator == "**":
        return (isinstance(left, int) and isinstance(right, int) and right > 0
                and left.bit_length() * right > MAX_OUTPUT)
    return any(isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_OUTPUT
               for seq, times in ((left, right), (right, left)))


class _Environment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, reading mapping keys before methods and refusing huge repetitions and powers."""

    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Dot access on a mapping reads its key first, so trigger.items is the payload's items, not dict.items."""
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        """Refuse 'x' * 10**9 and 10 ** 10**10 before they exhaust the worker."""
        if _too_big(operator, left, right):
            raise TemplateError(f"The template builds a value that is too big (using {operator}).")
        return super().call_binop(context, operator, left, right)


def _as_datetime(value: Any) -> datetime:
    """A datetime from an ISO 8601 string, a datetime or a date."""
    if isinstance(value, _Missing):
        value._fail_with_undefined_error()
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise TemplateError(f"{value!r} is not a date and time (expected ISO 8601, such as 2024-05-01T18:30:00Z).")


def format_datetime(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """The datetime filter: an ISO 8601 string or datetime, formatted with strftime codes."""
    return _as_datetime(value).strftime(fmt)


def format_date(value: Any, fmt: str = "%Y-%m-%d") -> str:
    """The date filter: the date part of an ISO 8601 string, datetime or date, formatted with strftime codes."""
    return _as_datetime(value).date().strftime(fmt)


def _environment(html: bool) -> _Environment:
    """A sandbox with the staff filters only; html=True autoescapes."""
    env = _Environment(autoescape=html, undefined=_Missing, keep_trailing_newline=True)
    env.filters = {name: env.filters[name] for name in _JINJA_FILTERS}
    env.filters.update(datetime=format_datetime, date=format_date)
    env.globals["range"] = _budgeted_range
    del env.globals["lipsum"]  # lorem ipsum generation is no use to staff and an easy runaway
    return env


_ENVIRONMENTS = {False: _environment(False), True: _environment(True)}
_GLOBAL_NAMES = frozenset(_ENVIRONMENTS[False].globals)


def _syntax_message(exc: TemplateSyntaxError) -> str:
    """A syntax error as staff should read it, with its line."""
    message = f"Syntax error on line {exc.lineno}: {exc.message}"
    if "No filter named" in (exc.message or ""):
        message += f" The filters are: {', '.join(sorted(_ENVIRONMENTS[False].filters))}."
    return message


@functools.lru_cache(maxsize=1024)
def _compile(source: str, html: bool):
    """The compiled template, cached on its source since a step renders the same one for every run."""
    try:
        return _ENVIRONMENTS[html].from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(_syntax_message(exc)) from exc


def render(template: str, context: Mapping, *, html: bool = False) -> str:
    """The template rendered against context; any failure is a TemplateError with a human message."""
    token = _range_budget.set([MAX_OUTPUT])
    try:
        return _collect(_compile(template, html).generate(dict(context)))
    except TemplateError:
        raise
    except _MissingError as exc:
        raise _missing_error(exc.missing, context, template) from exc
    except SecurityError as exc:
        raise TemplateError(f"The template uses something templates may not use: {exc.message}") from exc
    except Exception as exc:  # a template is user input: whatever it trips on is reported, not crashed on
        raise TemplateError(f"The template could not be rendered: {exc}") from exc
    finally:
        _range_budget.reset(token)


def _collect(chunks: Iterable[str]) -> str:
    """The joined output, stopping as soon as it grows past MAX_OUTPUT characters."""
    out, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise TemplateError(f"The template's output is longer than {MAX_OUTPUT:,} characters.")
        out.append(chunk)
    return str("".join(out))


def render_value(value: Any, context: Mapping, *, html: bool = False) -> Any:
    """Every string inside nested dicts and lists rendered (keys left alone); anything else unchanged."""
    if isinstance(value, str):
        return render(value, context, html=html) if "{{" in value or "{%" in value else value
    if isinstance(value, dict):
        return {key: render_value(item, context, html=html) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        rendered = [render_value(item, context, html=html) for item in value]
        return rendered if isinstance(value, list) else tuple(rendered)
    return value


def _dotted(segments: Iterable[Any]) -> str:
    """('steps', 'lookup', 0) -> 'steps.lookup.0'."""
    return ".".join(str(segment) for segment in segments)


def _missing_error(missing: _Missing, context: Mapping, template: str) -> TemplateError:
    """The error for a missing value: its full dotted path, and where the path broke if that helps."""
    name, obj, tail = missing._undefined_name, missing._undefined_obj, missing._tail
    parent = () if obj is NO_OBJECT else _locate(obj, name, context, template)
    if parent is None:  # a value the template built itself: Jinja's own description is the best there is
        return TemplateError(f"{missing._undefined_message} in the template")
    reference = _dotted(parent + (name,) + tail)
    return TemplateError(f"{reference} is not defined{_hint(parent, name, tail)}", reference)


def _hint(parent: tuple, name: Any, tail: tuple) -> str:
    """Why a path is missing, in brackets, when the path alone does not say."""
    if not parent:
        return f" (this run has no {name})" if name in ROOTS else f" (a template can read only {_ROOTS_TEXT})"
    if parent == ("steps",):
        return f" (step '{name}' has not run before this one)"
    if parent[0] == "steps" and len(parent) == 2:
        step = parent[1]
        return (f" (step '{step}' has no output)" if name == "output"
                else f" (a step exposes only its output: steps.{step}.output.{_dotted((name,) + tail)})")
    if parent[0] == "steps" and parent[2] == "output":
        return f" (step '{parent[1]}' has no output '{_dotted(parent[3:] + (name,))}')"
    return f" ({_dotted(parent)} has no '{name}')" if tail else ""


def _locate(obj: Any, name: Any, context: Mapping, template: str) -> tuple | None:
    """Where obj sits in the context, preferring a path the template spells out (one value can sit in two places)."""
    found = [path for path, value in _walk(context) if value is obj]
    spelled = _references(template)
    for path in found:
        dotted = _dotted(path + (name,))
        if any(ref == dotted or ref.startswith(dotted + ".") for ref in spelled):
            return path
    return found[0] if found else None


def _walk(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every (path, value) inside nested mappings and lists, depth first."""
    if isinstance(value, Mapping):
        items: Iterable = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        yield path + (key,), child
        yield from _walk(child, path + (key,))


def references(template: str) -> set[str]:
    """Every dotted data path the template reads; names the template binds itself are not references."""
    return set(_references(template))


@functools.lru_cache(maxsize=1024)
def _references(template: str) -> frozenset[str]:
    """references(), cached: error messages consult it too."""
    try:
        tree = _ENVIRONMENTS[False].parse(template)
    except TemplateSyntaxError as exc:
        raise TemplateError(_syntax_message(exc)) from exc
    return frozenset(_reads(tree, set()))


def _reads(node: nodes.Node, bound: set[str]) -> Iterator[str]:
    """Paths node reads; bound holds the names the template has set so far, and grows as {% set %}s pass."""
    if isinstance(node, (nodes.Name, nodes.Getattr, nodes.Getitem)):
        yield from _path_reads(node, bound)
    elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
        yield from _reads(node.node.node, bound)  # a method call reads the object, not a key named after the method
        yield from _reads_all(node.iter_child_nodes(exclude=("node",)), bound)
    elif isinstance(node, (nodes.Assign, nodes.AssignBlock)):
        yield from _reads_all(node.iter_child_nodes(exclude=("target",)), bound)
        bound |= _stored(node.target)
    elif isinstance(node, nodes.For):
        yield from _reads(node.iter, bound)
        yield from _reads_all([node.test, *node.body], bound | _stored(node.target) | {"loop"})
        yield from _reads_all(node.else_, set(bound))
    elif isinstance(node, nodes.With):
        yield from _reads_all(node.values, bound)
        yield from _reads_all(node.body, bound.union(*map(_stored, node.targets)))
    elif isinstance(node, (nodes.Macro, nodes.CallBlock)):
        yield from _reads_all(node.defaults, bound)
        if isinstance(node, nodes.Macro):
            bound.add(node.name)
        else:
            yield from _reads(node.call, bound)
        yield from _reads_all(node.body, bound | {arg.name for arg in node.args} | {"caller", "varargs", "kwargs"})
    else:
        yield from _reads_all(node.iter_child_nodes(), bound)


def _reads_all(children: Iterable[nodes.Node | None], bound: set[str]) -> Iterator[str]:
    """_reads() over several nodes in order, skipping absent ones (a for without an if)."""
    for child in children:
        if child is not None:
            yield from _reads(child, bound)


def _path_reads(node: nodes.Node, bound: set[str]) -> Iterator[str]:
    """The dotted path of a Name/Getattr/Getitem chain, and whatever its computed subscripts read."""
    segments: list[Any] = []
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        key = node.attr if isinstance(node, nodes.Getattr) else _constant_key(node.arg)
        if key is None:  # a computed key: the path is known only up to it
            yield from _reads(node.arg, bound)
            segments = []
        else:
            segments.append(key)
        node = node.node
    if not isinstance(node, nodes.Name):
        yield from _reads(node, bound)
    elif node.ctx == "load" and node.name not in bound and node.name not in _GLOBAL_NAMES:
        yield _dotted([node.name, *reversed(segments)])


def _constant_key(arg: nodes.Node) -> str | int | None:
    """A subscript's key when it is a constant string or int."""
    if isinstance(arg, nodes.Const) and isinstance(arg.value, (str, int)) and not isinstance(arg.value, bool):
        return arg.value
    return None


def _stored(target: nodes.Node) -> set[str]:
    """The names an assignment or loop target binds."""
    names = [target] if isinstance(target, nodes.Name) else target.find_all(nodes.Name)
    return {name.name for name in names if name.ctx in ("store", "param")}  # {% with %} binds params


def check(template: str) -> list[dict]:
    """Problems found without rendering: a syntax error, a root not in ROOTS, a step read without .output."""
    try:
        _compile(template, False)
        paths = sorted(_references(template))
    except TemplateError as exc:
        return [{"code": "SYNTAX_ERROR", "message": exc.message}]
    return [problem for path in paths if (problem := _path_problem(path))]


def _path_problem(path: str) -> dict | None:
    """The problem with one referenced path, if any."""
    root, *rest = path.split(".")
    if root not in ROOTS:
        return {"code": "UNKNOWN_ROOT", "reference": path,
                "message": f"{path} cannot be read: a template can read only {_ROOTS_TEXT}."}
    if root == "steps" and rest and rest[1:2] != ["output"]:
        suggestion = _dotted(["steps", rest[0], "output", *rest[1:]])
        return {"code": "STEP_WITHOUT_OUTPUT", "reference": path,
                "message": f"{path} reads the step itself, but a step exposes only its output: "
                           f"did you mean {suggestion}?"}
    return None
