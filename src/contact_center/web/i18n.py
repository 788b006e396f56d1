"""The UI's words: templates call t("key") (or t("key", name=...) for placeholders), and the page
script gets the keys under "js." as JSON. The texts live in the gettext catalogs of
contact_center/translations (pt-BR by default, English when chosen)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache

from jinja2 import Undefined

from contact_center.translations import DEFAULT, LANGUAGES, Words, catalog, fill, from_header, pick, say_stored, text

__all__ = ["DEFAULT", "LANGUAGES", "page_language", "pick", "request_language", "script_strings_json", "translator"]


def translator(lang: str) -> Callable[..., str]:
    """t("key", name=...) in `lang`; t.say(value) says words (a refusal) or a stored reason
    (translations.store: a message's, a try's, a paused channel's) in it too."""
    lang = pick(lang)

    def t(key: str, **values) -> str:
        return fill(text(lang, key), values)

    t.say = lambda value: _say(value, lang)
    return t


def _say(value, lang: str) -> str:
    """Words in `lang`; a stored reason said in it; other text as it is; nothing as ''."""
    if value is None or isinstance(value, Undefined):
        return ""
    return say_stored(value, lang) if isinstance(value, Words) or type(value) is str else value  # not Markup


@lru_cache(maxsize=None)
def script_strings_json(lang: str) -> str:
    """The page script's words ("js." keys, without it) as JSON safe inside a <script>: built once
    per language, since the catalogs do not change while the process runs."""
    strings = {**catalog(DEFAULT), **catalog(pick(lang))}
    words = {key[3:]: value for key, value in strings.items() if key.startswith("js.")}
    return json.dumps(words).replace("<", "\\u003c")


def page_language(request) -> str:
    """The UI's language for this request: the operator's choice (its cookie), Portuguese by default."""
    from contact_center.web.session import LANG_COOKIE

    return pick(request.cookies.get(LANG_COOKIE))


def request_language(request) -> str | None:
    """The language to say an error in: the UI's (its cookie, Portuguese by default) for the page
    script and the pages, the one an API client asks for with Accept-Language, or None (the message
    as the code wrote it) for an API client that asks for none."""
    from contact_center.web.errors import wants_page

    if request.headers.get("x-requested-with") == "fetch" or wants_page(request):
        return page_language(request)
    header = request.headers.get("accept-language")
    return from_header(header) if header else None
