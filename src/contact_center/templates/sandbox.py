"""The Jinja environment operator templates run in: Python internals out of reach, and every
operation that could be big in one step sized before it runs, against the render's budget.

Why each piece is here:
- Jinja folds constant expressions while compiling (`{{ 9**(9**8) }}` froze the server before any
  render): the optimizer is off, output expressions are not pre-evaluated, arithmetic is
  intercepted (Jinja never folds intercepted operators) and every filter is marked as needing the
  context (Jinja never folds those either).
- One C-level call cannot be interrupted by the CPU tracer, so each one that could amplify its
  input (`'x' * n`, `n ** m`, `center(n)`, `'%*s' % n`, `sep.join(...)`, joining a block's
  buffer, printing a list of many references to one long text…) is refused *before* it runs when
  its result would pass the size limit. Every value the template builds is measured, so that
  later operations on it stay bounded too.
- Attributes are an allowlist per type: a new Python method cannot silently open a way around
  these checks.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable
from functools import cache, update_wrapper
from types import BuiltinMethodType, MethodType

from jinja2 import StrictUndefined, nodes, pass_context
from jinja2.compiler import CodeGenerator
from jinja2.defaults import DEFAULT_FILTERS
from jinja2.filters import make_attrgetter, sync_do_join
from jinja2.runtime import markup_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, SecurityError
from jinja2.utils import _PassArg, generate_lorem_ipsum
from markupsafe import EscapeFormatter, Markup, soft_str

from contact_center.translations import Quantity, Words
from contact_center.templates.budget import (
    MAX_ITEMS, MAX_NUMBER_BITS, MAX_NUMBER_DIGITS, MAX_STRIP_CHARACTERS, BudgetExceeded, RenderState, _local, current,
    items_refusal, measure, number_refusal, remember,
)


class NotAvailable(SecurityError):
    """An attribute outside the allowlist (a method templates have no use for)."""


_BUILT_TYPES = (str, list, tuple, dict)


# What refusals name, in the reader's language (the template's own expressions are quoted as written).
A_FORMAT_FIELD = Words("a format field")
THE_FORMATTED_TEXT = Words("the formatted text")
THE_TEXT = Words("the text")
THE_FORMAT_RESULT = Words("the |format result")
BLOCK_TEXT = Words("the text of a block or macro")
JOINED_VALUE = Words("a value joined with ~")
JOINED_RESULT = Words("the result of ~")
CALL_RESULT = Words("the result of the call")


# Named once per operator and kind, not at each operation a render makes.
@cache
def _result_of(operator: str) -> Words:
    return Words("the result of {operator}", operator=operator)


@cache
def _written_in_template(kind: str) -> Words:
    return Words("the {kind} written in the template", kind=kind)


def account(value, state: RenderState, what: str | Words):
    """`value`, once measured against the size limit; text and containers are added to what the
    render has built (a range, a generator or a macro holds no text of its own)."""
    size = len(value) if type(value) is str else measure(value, state)
    if size > state.limit:
        raise state.budget.size_refusal(what, size if isinstance(value, str) else None)
    if isinstance(value, _BUILT_TYPES):
        state.built += size
        if state.built > state.built_limit:
            raise state.budget.built_refusal()
    return value


def _check_size(size: int, state: RenderState, what: str | Words | Callable[[], Words]) -> None:
    """Refuse `size` over the limit; `what` names it, or builds the name when it comes to that
    (where the check runs at every operation of a render)."""
    if size > state.limit:
        raise state.budget.size_refusal(what() if callable(what) else what, size)


def _describe(value) -> str | Words:
    """A short name for an operand in a refusal (never the whole of a long value)."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 20 else Words("a text of {count} characters", count=Quantity(len(value)))
    if isinstance(value, int):
        digits = value.bit_length() * 77 // 256
        return str(value) if digits <= 20 else Words("a number of about {count} digits", count=Quantity(digits))
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return Words("a list of 1 item")
        return Words("a list of {count} items", count=Quantity(len(value)))
    return Words("a {kind} value", kind=type(value).__name__)


def _count(value) -> int:
    """A repeat count as Python will use it (bools are ints), or 0 when it is not one."""
    return value if isinstance(value, int) else 0


# --- operators -----------------------------------------------------------------------------------

def _check_binop(operator: str, left, right, state: RenderState) -> int | None:
    """Refuse `left <operator> right` when its result would be too big; the size of a repeated
    sequence, computed here, is returned so that it need not be walked again."""
    def what() -> Words:  # built only for a refusal: this runs at every operator of every render
        return Words("{left} {operator} {right}", left=_describe(left), operator=operator, right=_describe(right))

    if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        # bits of the result ≈ exponent × log2|base|; an exponent over a million is too big for any base ≥ 2
        bits = math.inf if right > 10**6 else right * math.log2(abs(left))
        if bits > MAX_NUMBER_BITS:
            raise number_refusal(what(), bits / 3.3219280948873626)
    elif operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            bits = left.bit_length() + right.bit_length()
            if bits > MAX_NUMBER_BITS:
                raise number_refusal(what(), bits / 3.3219280948873626)
        elif isinstance(left, (str, list, tuple)) or isinstance(right, (str, list, tuple)):
            sequence, times = (left, _count(right)) if isinstance(left, (str, list, tuple)) else (right, _count(left))
            size = measure(sequence, state) * max(times, 0)
            _check_size(size, state, what)
            return size
    elif operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
        size = measure(left, state) + measure(right, state)
        _check_size(size, state, what)
        return size
    elif operator == "%" and isinstance(left, str):
        _check_size(printf_size(left, right, state), state, lambda: Words("{left} % …", left=_describe(left)))
    return None


_PRINTF_SPEC = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?(?P<type>.)?", re.S)


def printf_size(text: str, args, state: RenderState) -> int:
    """An upper bound of the length of `text % args`, without formatting it: widths and precisions
    (written or `*`), plus each converted value's size (a float can have 309 digits before the point)."""
    limit = state.limit
    positional = args if isinstance(args, tuple) else (args,)
    mapping = args if isinstance(args, dict) else None
    position = 0
    total = len(text)
    for spec in _PRINTF_SPEC.finditer(text):
        if spec["type"] == "%":
            continue
        for part in (spec["width"], spec["precision"]):
            if part == "*":
                width = positional[position] if position < len(positional) else 0
                position += 1
                total += abs(width) if isinstance(width, int) else 0
            elif part:
                total += int(part) if len(part) <= 9 else 10**10
        if spec["key"] is not None:
            value = mapping.get(spec["key"]) if mapping is not None else args
        else:
            value = positional[position] if position < len(positional) else None
            position += 1
        total += measure(value, state) + (310 if isinstance(value, float) else 0)  # "%d" % 1e308: 309 digits
        if total > limit:
            break
    return total


_NUMBERS = re.compile(r"\d+")


def check_format_spec(spec: str, state: RenderState, what: str | Words) -> None:
    """`{:>1000000000}`, `{:.1000000f}`: no width or precision in a format spec may pass the size limit."""
    for number in _NUMBERS.findall(spec):
        if len(number) > 9 or int(number) > state.limit:
            raise state.budget.size_refusal(what)


class _Formatter(SandboxedFormatter):
    """str.format for templates: the sandbox's attribute rules, plus each field and the total sized."""

    def __init__(self, env, **kwargs):
        super().__init__(env, **kwargs)
        self.total = 0

    def format_field(self, value, format_spec: str):
        state = current()
        check_format_spec(format_spec, state, A_FORMAT_FIELD)
        account(value, state, A_FORMAT_FIELD)
        result = super().format_field(value, format_spec)
        self.total += len(result)
        _check_size(self.total, state, THE_FORMATTED_TEXT)
        return result


class _EscapeFormatter(_Formatter, EscapeFormatter):
    pass


# --- methods -------------------------------------------------------------------------------------

def _check_width(state, text, width=0, *_):
    _check_size(max(len(text), _count(width)), state, Words("{text} padded to {width}", text=_describe(text), width=_describe(width)))


def _check_expandtabs(state, text, tabsize=8):
    _check_size(len(text) + text.count("\t") * max(_count(tabsize), 0), state, "expandtabs")


def replaced_size(text: str, old: str, new: str, count=-1) -> int:
    occurrences = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        occurrences = min(occurrences, count)
    return len(text) + occurrences * (len(new) - len(old))


def _check_replace(state, text, old="", new="", count=-1, *_):
    if isinstance(old, str) and isinstance(new, str):
        _check_size(replaced_size(text, old, new, count), state, Words("replace({old}, {new})", old=_describe(old), new=_describe(new)))


def _check_strip(state, text, chars=None, *_):
    if isinstance(chars, str) and len(chars) > MAX_STRIP_CHARACTERS:
        raise BudgetExceeded("strip_characters", f"refused: strip with {len(chars):,} characters to strip; "
                                                 f"at most {MAX_STRIP_CHARACTERS}")


_STRING_CHECKS = {
    "center": _check_width, "ljust": _check_width, "rjust": _check_width, "zfill": _check_width,
    "expandtabs": _check_expandtabs, "replace": _check_replace,
    "strip": _check_strip, "lstrip": _check_strip, "rstrip": _check_strip,
}
STRING_METHODS = frozenset({
    "capitalize", "casefold", "center", "count", "endswith", "expandtabs", "find", "format", "format_map", "index",
    "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable",
    "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix",
    "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith",
    "strip", "swapcase", "title", "upper", "zfill", "striptags", "unescape",
})
NUMBER_ATTRIBUTES = frozenset({"real", "imag", "numerator", "denominator", "is_integer", "conjugate", "bit_length"})
SEQUENCE_METHODS = frozenset({"index", "count"})
DICT_METHODS = frozenset({"items", "keys", "values", "get"})


def _checked_join(state: RenderState, separator: str, join, iterable):
    items = []
    total = 0
    for item in iterable:
        items.append(item)
        total += (len(item) if isinstance(item, str) else 0) + len(separator)
        _check_size(total, state, Words("{separator}.join(…)", separator=_describe(separator)))
    return join(items)


# --- filters -------------------------------------------------------------------------------------

def checked_filter(name: str, func, check=None):
    """`func` as a template filter: `check(state, value, *args, **kwargs)` first (it refuses work
    that would be too big), the result measured after.

    Marked as taking the context so that Jinja never runs it while compiling."""
    pass_arg = _PassArg.from_obj(func)
    what = Words("the result of |{name}", name=name)

    @pass_context
    def checked(context, value, *args, **kwargs):
        state = _local.state or current()
        if check is not None:
            check(state, value, *args, **kwargs)
        if pass_arg is None:
            result = func(value, *args, **kwargs)
        elif pass_arg is _PassArg.context:
            result = func(context, value, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        else:
            result = func(context.environment, value, *args, **kwargs)
        return account(result, state, what)

    checked.__name__ = checked.__qualname__ = name
    return checked


def _text(value, state: RenderState) -> str:
    if not isinstance(value, str):
        account(value, state, THE_TEXT)
    return soft_str(value)


def _filter_center(state, value, width=80):
    _check_width(state, _text(value, state), width)


def _filter_indent(state, s, width=4, first=False, blank=False):
    text = _text(s, state)
    indent = len(width) if isinstance(width, str) else _count(width)
    _check_size(len(text) + (text.count("\n") + 2) * max(indent, 0), state, Words("indent({width})", width=_describe(width)))


def _filter_format(state, value, *args, **kwargs):
    _check_size(printf_size(_text(value, state), kwargs or args, state), state, THE_FORMAT_RESULT)


def _filter_replace(state, s, old, new, count=None):
    _check_replace(state, _text(s, state), _text(old, state), _text(new, state), -1 if count is None else count)


def _filter_trim(state, value, chars=None):
    _check_strip(state, "", chars)


def _filter_round(state, value, precision=0, method="common"):
    if isinstance(precision, int) and abs(precision) > MAX_NUMBER_DIGITS:  # |round computes 10 ** precision
        raise number_refusal(Words("round to {places} places", places=_describe(precision)), abs(precision))


def _filter_batch(state, value, linecount, fill_with=None):
    count = _count(linecount)
    if count > MAX_ITEMS:
        raise items_refusal(f"batch({count:,})", count)
    if fill_with is not None:
        _check_size(count * measure(fill_with, state), state, Words("batch({count}) filled", count=Quantity(count)))


def _filter_slice(state, value, slices, fill_with=None):
    count = _count(slices)
    if count > MAX_ITEMS:
        raise items_refusal(f"slice({count:,})", count)
    if fill_with is not None:
        _check_size(count * measure(fill_with, state), state, Words("slice({count}) filled", count=f"{count:,}"))


def _join(eval_ctx, value, d="", attribute=None):
    """|join, sizing the pieces before joining them (the original converts and joins in one C call)."""
    state = current()
    if attribute is not None:
        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    items = []
    total = 0
    separator = len(soft_str(d))
    for item in value:
        items.append(item)
        total += measure(item, state) + separator
        _check_size(total, state, Words("join({separator})", separator=_describe(d)))
    return sync_do_join(eval_ctx, items, d)
_join.jinja_pass_arg = _PassArg.eval_context


def _wordwrap(environment, s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    """|wordwrap, sizing the lines before joining them with `wrapstring` (which may be long)."""
    state = current()
    wrapstring = environment.newline_sequence if wrapstring is None else wrapstring
    text = _text(s, state)
    if isinstance(width, int) and width > 0:
        # Two consecutive lines of a paragraph hold at least `width` characters: at most
        # 2 × len / width + 1 lines a paragraph, known before the (slow) wrapping.
        most_lines = 2 * len(text) // width + text.count("\n") + 2
        _check_size(len(text) + most_lines * len(soft_str(wrapstring)), state,
                    Words("wordwrap with {text}", text=_describe(wrapstring)))
    paragraphs = [textwrap.wrap(line, width=width, expand_tabs=False, replace_whitespace=False,
                                break_long_words=break_long_words, break_on_hyphens=break_on_hyphens)
                  for line in text.splitlines()]
    lines = sum(len(lines) for lines in paragraphs) + len(paragraphs)
    size = sum(len(line) for lines in paragraphs for line in lines) + lines * len(soft_str(wrapstring))
    _check_size(size, state, Words("wordwrap with {text}", text=_describe(wrapstring)))
    return wrapstring.join(wrapstring.join(lines) for lines in paragraphs)
_wordwrap.jinja_pass_arg = _PassArg.environment


def _sum(environment, iterable, attribute=None, start=0):
    """|sum of numbers (the original also adds lists, quadratically in one C call)."""
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    values = [start, *iterable]
    if not all(isinstance(v, (int, float)) for v in values):
        raise TypeError("sum adds numbers only")
    return sum(values)
_sum.jinja_pass_arg = _PassArg.environment


# Filters whose work and result are at most proportional to their input.
_LINEAR_FILTERS = (
    "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "filesizeformat", "first",
    "float", "forceescape", "groupby", "int", "items", "last", "length", "list", "lower", "map", "max", "min",
    "random", "reject", "rejectattr", "reverse", "safe", "select", "selectattr", "sort", "string", "striptags",
    "title", "truncate", "unique", "upper", "urlencode", "wordcount",
)
# Left out: pprint, tojson, urlize, xmlattr (HTML and debugging; urlize repeats its `target` per link).


def template_filters(extra: dict) -> dict:
    table = {name: checked_filter(name, DEFAULT_FILTERS[name]) for name in _LINEAR_FILTERS}
    for name, func, check in (
        ("center", DEFAULT_FILTERS["center"], _filter_center), ("indent", DEFAULT_FILTERS["indent"], _filter_indent),
        ("format", DEFAULT_FILTERS["format"], _filter_format), ("replace", DEFAULT_FILTERS["replace"], _filter_replace),
        ("trim", DEFAULT_FILTERS["trim"], _filter_trim), ("round", DEFAULT_FILTERS["round"], _filter_round),
        ("batch", DEFAULT_FILTERS["batch"], _filter_batch), ("slice", DEFAULT_FILTERS["slice"], _filter_slice),
        ("join", _join, None), ("wordwrap", _wordwrap, None), ("sum", _sum, None),
    ):
        table[name] = checked_filter(name, func, check)
    table.update({name: checked_filter(name, func) for name, func in extra.items()})
    return table


# Filters cheap enough for the untraced path: one pass over a value that is itself bounded.
PLAIN_FILTERS = frozenset({
    "abs", "brl", "capitalize", "center", "count", "d", "data", "default", "e", "escape", "first", "float", "format",
    "indent", "int", "last", "length", "lower", "replace", "round", "string", "striptags", "title", "trim",
    "truncate", "upper", "urlencode", "wordcount",
})
_PLAIN_NODES = (
    nodes.Output, nodes.TemplateData, nodes.Const, nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.If,
    nodes.CondExpr, nodes.Assign, nodes.Concat, nodes.BinExpr, nodes.UnaryExpr, nodes.Compare, nodes.Operand,
    nodes.Test, nodes.Keyword, nodes.List, nodes.Tuple, nodes.Dict, nodes.Pair,
)


def repeats_work(ast: nodes.Template) -> bool:
    """Whether the template can do more work than its size: a loop, a macro, a call, a block, or a
    filter that iterates. Templates without any run each expression at most once, every operation
    sized, so they need no CPU tracer."""
    for node in ast.find_all(nodes.Node):
        if isinstance(node, nodes.Filter):
            if node.name not in PLAIN_FILTERS or node.node is None:
                return True
        elif not isinstance(node, _PLAIN_NODES):
            return True
    return False


# --- globals -------------------------------------------------------------------------------------

def _range(*args):
    numbers = range(*args)
    try:
        count = len(numbers)
    except OverflowError:
        count = math.inf
    if count > MAX_ITEMS:
        raise items_refusal("range(…)", count)
    return numbers


def _lipsum(n=5, html=True, min=20, max=100):  # noqa: A002 (Jinja's parameter names)
    state = current()
    _check_size(_count(n) * (_count(max) * 12 + 10), state, "lipsum(…)")  # words are 12 characters at most
    return generate_lorem_ipsum(n, html, min, max)


def _dict(*args, **kwargs):
    return dict(*args, **kwargs)


# --- the environment -----------------------------------------------------------------------------

class _CodeGenerator(CodeGenerator):
    def _output_child_to_const(self, node, frame, finalize):
        # Jinja evaluates constant `{{ }}` expressions while compiling; only text and literals,
        # which evaluate nothing, may join the template's static text.
        if not isinstance(node, (nodes.TemplateData, nodes.Const)):
            raise nodes.Impossible()
        return super()._output_child_to_const(node, frame, finalize)

    def _wrapped(self, visit, node, frame) -> None:
        # Lists, tuples and dicts written in the template are measured as they are built:
        # `[a, a, a]` nested a few times is a billion references to `a`.
        self.write("environment.checked_value(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node, frame):
        self._wrapped(super().visit_List, node, frame)

    def visit_Dict(self, node, frame):
        self._wrapped(super().visit_Dict, node, frame)

    def visit_Tuple(self, node, frame):
        if node.ctx == "load":
            self._wrapped(super().visit_Tuple, node, frame)
        else:  # an assignment target: `{% for a, b in … %}`
            super().visit_Tuple(node, frame)

    def visit_Assign(self, node, frame):
        # `{% set ns.x = value %}`: the value goes through environment.checked_store (Jinja allows
        # no custom node types, so as a call of it).
        if isinstance(node.target, nodes.NSRef) or any(True for _ in node.target.find_all(nodes.NSRef)):
            checked = nodes.Call(nodes.EnvironmentAttribute("checked_store"), [node.node], [], None, None,
                                 lineno=node.lineno)
            node = nodes.Assign(node.target, checked, lineno=node.lineno)
        super().visit_Assign(node, frame)

    def visit_Concat(self, node, frame):
        # `a ~ b`: Jinja's str_join converts and joins in one C call.
        self.write("environment.checked_join(context.eval_ctx.autoescape, (")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, *, extra_filters: dict, scope_types: tuple[type, ...]):
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False, optimized=False)
        self.scope_types = frozenset(scope_types)
        self.finalize = self.checked_output
        self.concat = self.checked_concat  # joins the buffers of {% set %} blocks, macros, filter and call blocks
        self.filters = template_filters(extra_filters)
        self.globals.update(range=_range, lipsum=_lipsum, dict=_dict)

    # What compiled templates call (the code generator above writes `environment.<name>`).

    @staticmethod
    def checked_output(value):
        """Each `{{ }}` value, wherever it goes: to the message, or to a block's buffer."""
        state = _local.state or current()
        if state.expired:
            raise state.budget.cpu_refusal()
        size = len(value) if type(value) is str else measure(value, state)
        if size > state.limit:
            raise state.budget.output_refusal()
        state.built += size
        if state.built > state.built_limit:
            raise state.budget.built_refusal()
        return value

    @staticmethod
    def checked_concat(pieces) -> str:
        state = current()
        if not isinstance(pieces, list):  # Template.render and block references pass a generator
            pieces = list(pieces)  # each piece already went through checked_output
        size = sum(map(len, pieces))
        _check_size(size, state, BLOCK_TEXT)
        state.add_built(size)
        return "".join(pieces)

    @staticmethod
    def checked_join(autoescape: bool, values: tuple) -> str:
        state = current()
        pieces = []
        total = 0
        for value in values:
            if type(value) is not str:
                account(value, state, JOINED_VALUE)
                value = soft_str(value)
            total += len(value)
            pieces.append(value)
        _check_size(total, state, JOINED_RESULT)
        state.add_built(total)
        if autoescape:
            return account(markup_join(pieces), state, JOINED_RESULT)
        return "".join(pieces)

    @staticmethod
    def checked_value(value):
        """A list, tuple or dict written in the template."""
        return account(value, current(), _written_in_template(type(value).__name__))

    @staticmethod
    def checked_store(value):
        state = current()
        size = measure(value, state, namespace_allowed=False)
        if size > state.limit:
            raise state.budget.size_refusal(Words("the value stored in the namespace"))
        state.add_built(size)
        return value

    def call_binop(self, context, operator, left, right):
        state = _local.state or current()
        if state.expired:
            raise state.budget.cpu_refusal()
        size = _check_binop(operator, left, right, state)
        result = self.binop_table[operator](left, right)
        if size is not None and not isinstance(result, str):
            remember(result, size, state)
        return account(result, state, _result_of(operator))

    def call(self, context, obj, /, *args, **kwargs):
        state = _local.state or current()
        if state.expired:
            raise state.budget.cpu_refusal()
        return account(super().call(context, obj, *args, **kwargs), state, CALL_RESULT)

    def is_safe_attribute(self, obj, attr: str, value) -> bool:
        if attr.startswith("_"):
            return False
        kind = type(obj)
        if kind in self.scope_types:
            return True
        if isinstance(obj, str):
            return attr in STRING_METHODS
        if isinstance(obj, (int, float)):
            return attr in NUMBER_ATTRIBUTES
        if isinstance(obj, (list, tuple)):
            return attr in SEQUENCE_METHODS
        if isinstance(obj, dict):
            return attr in DICT_METHODS
        if isinstance(obj, type):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def unsafe_undefined(self, obj, attribute: str):
        if attribute.startswith("_") or isinstance(obj, type):
            return super().unsafe_undefined(obj, attribute)
        return self.undefined(f"{attribute!r} is not available on {type(obj).__name__} values in templates",
                              name=attribute, obj=obj, exc=NotAvailable)

    def wrap_str_format(self, value):
        """The sandbox's hook for str methods met as attributes: format/format_map get a formatter
        that sizes each field; the methods that can amplify a text are sized before they run."""
        if not isinstance(value, (BuiltinMethodType, MethodType)):
            return None
        if not isinstance(getattr(value, "__self__", None), str):
            return None
        text, name = value.__self__, value.__name__
        if name in ("format", "format_map"):
            return self._checked_format(text, value, name == "format_map")
        if name == "join":
            def join(iterable):
                return _checked_join(current(), text, value, iterable)

            return update_wrapper(join, value)
        check = _STRING_CHECKS.get(name)
        if check is None:
            return None

        def method(*args, **kwargs):
            check(current(), text, *args, **kwargs)
            return value(*args, **kwargs)

        return update_wrapper(method, value)

    def _checked_format(self, text: str, method, is_map: bool):
        def format_(*args, **kwargs):
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one positional argument")
                args, kwargs = (), args[0]
            formatter = (_EscapeFormatter(self, escape=text.escape) if isinstance(text, Markup) else _Formatter(self))
            return type(text)(formatter.vformat(text, args, kwargs))

        return update_wrapper(format_, method)

