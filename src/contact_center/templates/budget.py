"""What compiling or rendering one template may spend (design invariant 7): the one place the limits live.

Two limits are configured (Settings `template_cpu_seconds`, `template_max_output_bytes`); the others
here are fixed and derived from what an SMS template can sensibly need.

CPU time is enforced by a tracer (see `run`) for templates that can repeat work (loops, macros,
calls); a tracer cannot interrupt one C-level operation, so every operation that could be big in one
call is checked before it runs (`sandbox.py`) against the size limit, making the overshoot past the
deadline at most one bounded operation.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import thread_time
from typing import TypeVar

from jinja2.runtime import Undefined
from jinja2.utils import Namespace

from contact_center.translations import Quantity, Words

T = TypeVar("T")

MAX_SOURCE_CHARACTERS = 5000  # the API schemas' cap on a template body, applied on every path (CLI, UI)
MAX_NUMBER_DIGITS = 1000  # arithmetic on bigger numbers is slow in one C call, and no message needs them
MAX_NUMBER_BITS = int(MAX_NUMBER_DIGITS * 3.3219280948873626)  # log2(10)
MAX_ITEMS = 10_000  # range() and batch/slice counts (Jinja's own range cap is 100,000)
MAX_STRIP_CHARACTERS = 100  # strip(chars) costs len(text) × len(chars) in one C call
BUILT_FACTOR = 16  # all the text one render builds, as a multiple of the size limit…
MIN_BUILT_BYTES = 2**20  # …and at least this: it bounds memory, whatever the size of a message
TEMPLATE_FILENAME = "<template>"  # the file name Jinja gives compiled templates' code
_CHECK_EVERY = 32  # tracer events between two looks at the clock


@dataclass(frozen=True)
class TemplateBudget:
    cpu_seconds: float
    max_output_bytes: int

    @classmethod
    def from_settings(cls, settings) -> TemplateBudget:
        return cls(cpu_seconds=settings.template_cpu_seconds, max_output_bytes=settings.template_max_output_bytes)

    @classmethod
    def default(cls) -> TemplateBudget:
        from contact_center.settings import Settings

        fields = Settings.model_fields
        return cls(cpu_seconds=fields["template_cpu_seconds"].default,
                   max_output_bytes=fields["template_max_output_bytes"].default)

    @property
    def max_built_bytes(self) -> int:
        """All the text one render may build on its way to the output (intermediate strings, lists,
        block buffers): bounds the memory a render can take within its CPU time."""
        return max(BUILT_FACTOR * self.max_output_bytes, MIN_BUILT_BYTES)

    # The refusals, worded once: each says which limit and its value.
    def cpu_refusal(self) -> BudgetExceeded:
        return BudgetExceeded("cpu_seconds", Words("refused: the template needs more than the CPU time limit of "
                                                   "{seconds} s per message", seconds=f"{self.cpu_seconds:g}"))

    def output_refusal(self) -> BudgetExceeded:
        return BudgetExceeded("max_output_bytes", Words("refused: the message would be larger than the size limit "
                                                        "of {limit} bytes", limit=Quantity(self.max_output_bytes)))

    def size_refusal(self, what: str | Words, size: int | None = None) -> BudgetExceeded:
        limit = Quantity(self.max_output_bytes)
        if size is not None and size < 10**15:
            return BudgetExceeded("max_output_bytes", Words("refused: {what} would be larger than the size limit of "
                                                            "{limit} bytes ({size} characters)", what=what,
                                                            limit=limit, size=Quantity(size)))
        return BudgetExceeded("max_output_bytes", Words("refused: {what} would be larger than the size limit of "
                                                        "{limit} bytes", what=what, limit=limit))

    def built_refusal(self) -> BudgetExceeded:
        return BudgetExceeded("max_output_bytes",
                              Words("refused: the template builds more than {built} bytes of text for one message "
                                    "(the larger of {least} and {factor} × the size limit of {limit} bytes)",
                                    built=Quantity(self.max_built_bytes), least=Quantity(MIN_BUILT_BYTES),
                                    factor=BUILT_FACTOR, limit=Quantity(self.max_output_bytes)))


def number_refusal(what: str | Words, digits: float) -> BudgetExceeded:
    limit = Quantity(MAX_NUMBER_DIGITS)
    if digits < 10**15:
        return BudgetExceeded("number_digits", Words("refused: {what} would have about {digits} digits; numbers in "
                                                     "templates are limited to {limit} digits", what=what,
                                                     digits=Quantity(digits), limit=limit))
    return BudgetExceeded("number_digits", Words("refused: {what} would have more than a million billion digits; "
                                                 "numbers in templates are limited to {limit} digits", what=what,
                                                 limit=limit))


def items_refusal(what: str, count: float) -> BudgetExceeded:
    limit = Quantity(MAX_ITEMS)
    if count < 10**15:
        return BudgetExceeded("items", Words("refused: {what} would have {count} items; templates are limited to "
                                             "{limit}", what=what, count=Quantity(count), limit=limit))
    return BudgetExceeded("items", Words("refused: {what} would have too many items; templates are limited to "
                                         "{limit}", what=what, limit=limit))


# What a refusal names, when it is not the template's own expression.
A_NUMBER = Words("a number")


class BudgetExceeded(BaseException):
    """A limit was reached inside a compile or a render.

    A BaseException, so that an `except Exception` in library code between the check and the render
    boundary cannot swallow it (nor Jinja's compile-time constant folding, which tries operations and
    keeps them for run time when they raise an Exception); the boundary turns it into a TemplateError."""

    def __init__(self, limit: str, message: str):
        super().__init__(message)
        self.limit = limit
        self.message = message


class RenderState:
    """The running account of one compile or render (a thread has at most one).

    Read on every checked operation, so kept flat: the hot paths read `_local.state` and these
    attributes directly (under the CPU tracer, each Python call is an event that costs)."""

    __slots__ = ("budget", "limit", "built_limit", "built", "expired", "sizes")

    def __init__(self, budget: TemplateBudget):
        self.budget = budget
        self.limit = budget.max_output_bytes
        self.built_limit = budget.max_built_bytes
        self.built = 0
        self.expired = False  # set by the tracer when it raises, in case something swallows the exception
        self.sizes: dict[int, tuple[object, int]] = {}  # id → (container, measured size)

    def add_built(self, size: int) -> None:
        self.built += size
        if self.built > self.built_limit:
            raise self.budget.built_refusal()


class _Local(threading.local):
    state: RenderState | None = None


_local = _Local()


def current() -> RenderState:
    """This thread's render; outside one (never the case in the service), a fresh default account."""
    return _local.state or RenderState(TemplateBudget.default())


def run(budget: TemplateBudget, work: Callable[[], T], *, traced: bool) -> T:
    """`work()` with `budget` as this thread's account.

    With `traced`, a tracer counts Python calls (and lines of template code) and looks at this
    thread's CPU clock every few dozen events, raising when the budget is spent. Templates that
    cannot repeat work skip the tracer (it makes a small render about three times slower); their
    time is still checked once they finish."""
    state = RenderState(budget)
    outer_state = _local.state
    _local.state = state
    deadline = thread_time() + budget.cpu_seconds
    if traced:
        outer_trace = sys.gettrace()
        sys.settrace(_tracer(state, deadline))
    try:
        result = work()
    finally:
        if traced:
            sys.settrace(outer_trace)  # also after the tracer raised: Python unsets a tracer that raises
        _local.state = outer_state
    if state.expired or thread_time() > deadline:
        raise budget.cpu_refusal()
    return result


def _tracer(state: RenderState, deadline: float):
    countdown = _CHECK_EVERY

    def trace(frame, event, arg):
        nonlocal countdown
        countdown -= 1
        if not countdown:
            countdown = _CHECK_EVERY
            if thread_time() > deadline:
                state.expired = True
                raise state.budget.cpu_refusal()
        # Line events only in template code: its loops may call nothing, library code's do.
        if event == "call" and frame.f_code.co_filename != TEMPLATE_FILENAME:
            return None
        return trace

    return trace


# --- sizes ---------------------------------------------------------------------------------------

_CONTAINERS = (list, tuple, dict, set, frozenset, type({}.keys()), type({}.values()), type({}.items()))


def measure(value, state: RenderState, limit: int | None = None, *, namespace_allowed: bool = True) -> int:
    """About how many characters str() of `value` makes, walking containers (each once per render:
    they cannot change inside the sandbox). Stops early past `limit` (the size limit by default).

    Lists, tuples and dicts may not hold a namespace: it is the one mutable value templates have,
    and a list of many references to one namespace would grow with every assignment to it."""
    if type(value) is str:
        return len(value)
    limit = state.limit if limit is None else limit
    total = 0
    stack = [value]
    root = value
    if isinstance(value, Namespace) and namespace_allowed:
        stack = list(value._Namespace__attrs.items())
        total = 16
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or isinstance(item, str):
            total += len(item) + 2  # quoted in a list's text
        elif kind is int or kind is bool:
            bits = item.bit_length()
            if bits > MAX_NUMBER_BITS:
                raise number_refusal(A_NUMBER, bits / 3.32)
            total += bits * 77 // 256 + 1  # digits: bits × log10(2)
        elif isinstance(item, _CONTAINERS):
            known = state.sizes.get(id(item))
            if known is not None and known[0] is item:
                total += known[1]
            else:
                total += 2 + 2 * len(item)
                if total > limit:
                    return total
                stack.extend(item.items() if isinstance(item, dict) else item)
        elif isinstance(item, Namespace):
            raise BudgetExceeded("namespace", "refused: a namespace cannot be kept in a list, a dict or "
                                              "another namespace")
        elif isinstance(item, Undefined) or item is None or kind is float or kind is complex:
            total += 24
        elif hasattr(kind, "__dataclass_fields__"):  # the template scopes (contact, user, company)
            total += 16
            stack.extend(getattr(item, name) for name in kind.__dataclass_fields__)
        else:  # runtime objects (loop, macros, cyclers, generators, ranges): their str() is short
            total += 64
        if total > limit:
            return total
    if isinstance(root, (list, tuple, dict)):
        state.sizes[id(root)] = (root, total)
    return total


def remember(container, size: int, state: RenderState) -> None:
    """Record a size computed without walking (the result of `list * n`)."""
    state.sizes[id(container)] = (container, size)
