"""The product's words in Brazilian Portuguese (the default) and English, kept as gettext catalogs
(`<language>/LC_MESSAGES/messages.po`) managed with Babel: `python -m contact_center.translations.extract`
finds every message in the code and adds the new ones to each catalog, for a translator to fill in.

Two kinds of message id live in the catalogs:
- a key, like `nav.inbox`: the UI's words (templates call t("nav.inbox")); each catalog says it in
  its language, and the page script gets the keys under `js.`;
- an English sentence: a domain error's message as the code raises it, with `{name}` placeholders
  for its parameters (`NotFound("contact {contact_id} not found", contact_id=7)`). The English
  catalog may leave it untranslated (the sentence is already English); the others translate it.

A message missing from a catalog falls back to Portuguese for a key and to the sentence itself for
an English id, so a forgotten translation is visible instead of blank.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

DEFAULT = "pt-BR"
LANGUAGES = {"pt-BR": "Português", "en": "English"}
FOLDERS = {"pt-BR": "pt_BR", "en": "en"}  # gettext names its folders with an underscore
HERE = Path(__file__).parent
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_KEY = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")


def is_key(message_id: str) -> bool:
    """`nav.inbox` is a key; `contact 7 not found` is an English sentence."""
    return _KEY.fullmatch(message_id) is not None


def pick(requested: str | None) -> str:
    return requested if requested in LANGUAGES else DEFAULT


def catalog_path(lang: str) -> Path:
    return HERE / FOLDERS[lang] / "LC_MESSAGES" / "messages.po"


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    """Message id → text in `lang`, for the messages that catalog translates."""
    from babel.messages.pofile import read_po

    with open(catalog_path(lang), "rb") as file:
        read = read_po(file, locale=FOLDERS[lang])
    return {message.id: message.string for message in read if message.id and message.string}


def fill(text: str, values: dict) -> str:
    """Put each {name}'s value in; one pass, so a value that itself holds "{actor}" stays as written,
    and a placeholder without a value shows itself."""
    if not values:
        return text
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


class Words:
    """A sentence and the values that fill its placeholders, translated where it ends up: a part of
    a sentence passed as one of its parameters (`Words('the template "{name}"', name=...)`), so each
    language can build the whole sentence; and, as their base, every refusal (errors.py)."""

    def __init__(self, message: str | Words, **params):
        if isinstance(message, Words):  # words passed on (a refusal's, a fragment's): theirs, these added
            message, params = message.template, {**message.params, **params}
        self.template = message
        self.params = params

    def text(self, lang: str | None) -> str:
        return render(lang, self.template, self.params)

    def __str__(self) -> str:
        return self.text(None)


_STORED = '{"words":'


def dump(words: Words) -> str:
    """Words kept in a text column (a campaign's reason to wait), to be said in each reader's
    language when read (`say_stored`): the sentence and its parameters, words among them kept as words."""
    return json.dumps(_plain(words), ensure_ascii=False, separators=(",", ":"), default=str)


def store(reason: Words | str | None) -> str | None:
    """A reason kept in a text column (a message's, a try's, a paused channel's), to be said in each
    reader's language by `say_stored`: a sentence with nothing to fill as it is (the catalogs
    translate it), one with parameters as `dump` writes it, a provider's own text as it came."""
    if isinstance(reason, Words):
        return dump(reason) if reason.params else reason.template
    return reason


def as_words(reason: Words | str) -> Words:
    """A reason as words, to be part of a longer one ("{reason} (channel paused)"): words as they
    are, a stored reason read back (`store`), any other text as a sentence the catalogs may know."""
    if isinstance(reason, Words):
        return reason
    return _unplain(json.loads(reason)) if reason.startswith(_STORED) else Words(reason)


def rewrite_stored(stored: str, change) -> str:
    """A stored reason with `change` applied to each of its texts (an LGPD erasure's scrub: a
    provider's error may quote the phone), read out of the words rather than out of their JSON,
    where a quote or a backslash in a name is escaped and would not be found."""
    if not stored.startswith(_STORED):
        return change(stored)

    def rewritten(value):
        if isinstance(value, Words):  # a provider's text may be the sentence of words of its own
            return Words(change(value.template), **{name: rewritten(v) for name, v in value.params.items()})
        return change(value) if isinstance(value, str) else value

    return store(rewritten(as_words(stored)))


def say_stored(stored: Words | str | None, lang: str | None) -> str | None:
    """A reason in `lang`: words, or a text column that `store` (or `dump`) wrote, said; a sentence
    the catalogs translate translated; any other text (a provider's, one written by hand) as it is."""
    if not stored:
        return stored
    return as_words(stored).text(lang)


def _plain(value):
    if isinstance(value, Words):
        return {"words": value.template, "params": {name: _plain(v) for name, v in value.params.items()}}
    return {"quantity": int(value)} if isinstance(value, Quantity) else value


def _unplain(value):
    if not isinstance(value, dict):
        return value
    if "quantity" in value:
        return Quantity(value["quantity"])
    return Words(value["words"], **{name: _unplain(v) for name, v in value["params"].items()})


def render(lang: str | None, message_id: str, params: dict) -> str:
    """`message_id` filled with `params`, in `lang` (None: as written in the code, and a key, which
    the code does not write out, in Portuguese), parameters that are themselves words (a Words, a
    domain error) said in the same language."""
    values = {name: _said(value, lang) for name, value in params.items()}
    return fill(message_id if lang is None and not is_key(message_id) else text(lang, message_id), values)


def _said(value, lang: str | None):
    if isinstance(value, Words):
        return value.text(lang)
    if isinstance(value, Quantity):
        return number(value, lang)
    return value


class Quantity(int):
    """A count or a size said to a reader (3,000 characters), grouped as each language writes it;
    a plain int (an id, a year) is said as it is."""


def number(value: int, lang: str | None) -> str:
    """A whole number grouped as `lang` writes it: 1.234.567 in Portuguese, 1,234,567 in English and
    in the code's own sentences (lang None)."""
    grouped = f"{value:,}"
    return grouped.replace(",", ".") if lang is not None and pick(lang) == "pt-BR" else grouped


def text(lang: str, message_id: str) -> str:
    """`message_id` in `lang` (unfilled)."""
    found = catalog(pick(lang)).get(message_id)
    if found:
        return found
    return catalog(DEFAULT).get(message_id, message_id) if is_key(message_id) else message_id


def translate(lang: str | None, message_id: str, **values) -> str:
    return render(lang, message_id, values)


def from_header(accept_language: str | None) -> str:
    """The language an API client asked for with Accept-Language: Portuguese when it prefers it,
    English otherwise (an API client that says nothing reads the API's English)."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("pt"):
            return "pt-BR"
        if tag.startswith("en"):
            return "en"
    return "en"
