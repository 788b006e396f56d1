"""The route class of every API and UI route: input the endpoint could not store or compute is
refused with a clear 422 before the endpoint runs, whatever the endpoint forgets to check.

- JSON bodies are read by json_input's strict rules (UTF-8, 64-bit whole numbers, no NaN, no NUL
  or lone surrogates, bounded nesting);
- whole numbers in the path or the query string (ids, offsets) must fit our keys (db.MAX_ID:
  PostgreSQL's INTEGER refuses a larger value inside the driver instead of finding nothing);
- no NUL character in the path, the query string or a form: PostgreSQL cannot store it, nor
  compare with it.
"""

from __future__ import annotations

import json
import re
import types
import typing

from fastapi.routing import APIRoute
from starlette.requests import Request

from contact_center import json_input
from contact_center.db import MAX_ID
from contact_center.errors import InvalidInput
from contact_center.translations import Quantity

_WHOLE = re.compile(r"[+-]?\d+")


class CheckedRoute(APIRoute):
    def get_route_handler(self):
        handle = super().get_route_handler()
        whole = frozenset(param.alias for param in (*self.dependant.path_params, *self.dependant.query_params)
                          if _is_whole_number(param.field_info.annotation))

        async def checked(request: Request):
            await _check(request, whole)
            return await handle(request)

        return checked


async def _check(request: Request, whole: frozenset[str]) -> None:
    for where in (request.path_params, request.query_params):
        for name, value in where.items():
            if "\x00" in str(name) or "\x00" in str(value):
                raise InvalidInput("{name}: the value holds a NUL character (%00), which cannot be stored or "
                                   "searched for", field=_printable(name), name=_printable(name))
            if name in whole and isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
                _check_whole(name, value.strip())
            elif name in whole and isinstance(value, int):
                _check_whole(name, str(value))
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    content_type = request.headers.get("content-type", "").lower()
    if "json" in content_type:
        try:
            json_input.loads(await request.body())  # the body is kept: the endpoint reads the same bytes
        except json_input.BadJson as exc:
            raise InvalidInput(exc.message, field="body") from None
        except json.JSONDecodeError:
            pass  # plain bad JSON: the framework's own 422 says where
    elif "x-www-form-urlencoded" in content_type:
        body = await request.body()
        if b"\x00" in body or b"%00" in body:
            raise InvalidInput("the form holds a NUL character (%00), which cannot be stored", field="body")


def _check_whole(name: str, written: str) -> None:
    digits = written.lstrip("+-")
    if len(digits) > 12 or not -MAX_ID <= int(written) <= MAX_ID:
        shown = written if len(written) <= 30 else f"{written[:20]}… ({len(digits):,} digits)"
        raise InvalidInput("{name}: {shown} is out of range; it can be at most {most}", field=name, name=name,
                           shown=shown, most=Quantity(MAX_ID))


def _is_whole_number(annotation) -> bool:
    if annotation is int:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_whole_number(arg) for arg in typing.get_args(annotation))
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_whole_number(typing.get_args(annotation)[0])
    return False


def _printable(text) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in str(text)[:60])
