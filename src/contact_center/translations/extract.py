"""Find every message the product shows and keep the catalogs complete.

    uv run python -m contact_center.translations.extract          # add new messages, drop unused sentences
    uv run python -m contact_center.translations.extract --check  # only say what is missing

Babel extracts from three kinds of file: the Jinja templates and the Python code (t("key"), and the
sentence each domain error is raised with) and the page script (fmt("key"), a `js.` key). A new
message is added to every catalog with an empty translation; nothing is ever removed, because some
keys are built at run time (t("status." ~ state)) and no extraction can see them. The check (also a
test) fails on a message a catalog lacks, an empty translation, placeholders that differ between
languages, and a domain error raised with a message built on the spot (an f-string cannot be
translated: write the sentence with {placeholders} and pass the values as parameters).
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from contact_center.translations import FOLDERS, HERE, LANGUAGES, _PLACEHOLDER, catalog_path, is_key

SOURCE = HERE.parent  # src/contact_center


@dataclass
class Found:
    messages: dict[str, list[str]] = field(default_factory=dict)  # id → where it is used ("file:line")
    problems: list[str] = field(default_factory=list)


def error_names() -> set[str]:
    """The domain error classes, whose first argument is a message to translate: every module of the
    package is imported first, since some are only imported inside the functions that use them."""
    import importlib
    import pkgutil

    import contact_center
    from contact_center.errors import DomainError, InvalidValue

    for module in pkgutil.walk_packages(contact_center.__path__, "contact_center."):
        # Revision scripts run only under Alembic; __main__ would run the command line.
        if ".migrations." not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)

    names, todo = set(), [DomainError, InvalidValue]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _python(errors: set[str], found: Found):
    def extract(fileobj, keywords, comment_tags, options):
        source = fileobj.read().decode("utf-8")
        where = options.get("filename", "?")
        tree = ast.parse(source)
        # An error class that says its own sentence: super().__init__("...") inside it is raising it.
        own = {id(node): cls.name for cls in ast.walk(tree) if isinstance(cls, ast.ClassDef) and cls.name in errors
               for node in ast.walk(cls) if _is_super_init(node)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            name = own.get(id(node), name)
            first = node.args[0]
            if name in ("t", "Words") or name in errors:
                if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.strip():
                    yield node.lineno, name, first.value, []
                elif name != "t" and (isinstance(first, (ast.JoinedStr, ast.BinOp)) or (
                        isinstance(first, ast.Call) and getattr(first.func, "attr", None) == "format")):
                    found.problems.append(f"{where}:{node.lineno}: {name}(...) is raised with a message built on "
                                          "the spot; write the sentence with {placeholders} and pass the values")
    return extract


def _is_super_init(node) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__"
            and isinstance(node.func.value, ast.Call) and getattr(node.func.value.func, "id", None) == "super")


_SCRIPT_KEY = re.compile(r"""\bfmt\(\s*"([\w.]+)"\s*[,)]""")


def _javascript_keys(fileobj, keywords, comment_tags, options):
    """fmt("key") with a literal key (a key built at run time, fmt(kind + "_one"), is not seen)."""
    for lineno, line in enumerate(fileobj.read().decode("utf-8").splitlines(), 1):
        for match in _SCRIPT_KEY.finditer(line):
            yield lineno, "fmt", "js." + match.group(1), []


def extract() -> Found:
    from jinja2.ext import babel_extract

    found = Found()
    errors = error_names()
    python = _python(errors, found)

    def python_with_name(fileobj, keywords, comment_tags, options):  # Babel does not say which file
        where = Path(getattr(fileobj, "name", "?"))
        shown = where.relative_to(SOURCE) if where.is_relative_to(SOURCE) else where
        return python(fileobj, keywords, comment_tags, {**options, "filename": str(shown)})

    methods = [("**.py", python_with_name),
               ("**/templates/**.html", babel_extract), ("**/static/**.js", _javascript_keys)]
    keywords = {"t": None, "Words": None, "fmt": None, **{name: None for name in errors}}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            SOURCE, method_map=methods, keywords=keywords):
        if isinstance(message, str) and message:
            found.messages.setdefault(message, []).append(f"{filename}:{lineno}")
    return found


def _read(lang: str):
    with open(catalog_path(lang), "rb") as file:
        return read_po(file, locale=FOLDERS[lang])


def update(found: Found) -> dict[str, int]:
    """Add each new message to every catalog, untranslated, and drop the sentences no code raises any
    more (a key may be built at run time, so keys stay). Returns how many each catalog got."""
    added = {}
    for lang in LANGUAGES:
        read = _read(lang)
        gone = [m.id for m in read if m.id and not is_key(m.id) and m.id not in found.messages]
        for message in gone:
            del read[message]
        new = [message for message in found.messages if message not in read]
        for message in new:
            read.add(message, "")  # no location: the catalogs are written without them
        if new or gone:
            with open(catalog_path(lang), "wb") as file:
                write_po(file, read, width=100, no_location=True, sort_output=False)
        added[lang] = len(new)
    return added


def check(found: Found) -> list[str]:
    problems = list(found.problems)
    catalogs = {lang: {m.id: m.string for m in _read(lang) if m.id} for lang in LANGUAGES}
    for message, where in found.messages.items():
        # An English sentence is its own English; a sentence written in Portuguese (its Portuguese
        # translation is itself) needs an English one.
        if not re.search(r"[^\W\d_]", _PLACEHOLDER.sub("", message)):
            continue  # only placeholders ("{problem}"): nothing to translate
        written_in_portuguese = catalogs["pt-BR"].get(message) == message
        for lang, entries in catalogs.items():
            needed = lang != "en" or is_key(message) or written_in_portuguese
            if message not in entries:
                problems.append(f"{where[0]}: {message!r} is not in the {lang} catalog")
            elif needed and not entries[message]:
                problems.append(f"{where[0]}: {message!r} has no {lang} translation")
    for lang, entries in catalogs.items():
        for message, translated in entries.items():
            if not is_key(message) and message not in found.messages:
                problems.append(f"{lang}: {message!r} is no longer in the code; the extraction drops it")
            reference = catalogs["pt-BR"].get(message, "") if is_key(message) else message
            if translated and reference and "{{" not in reference and (
                    set(_PLACEHOLDER.findall(translated)) != set(_PLACEHOLDER.findall(reference))):
                problems.append(f"{lang}: the placeholders of {message!r} differ from the original's")
    return problems


def main(argv: list[str]) -> int:
    found = extract()
    if "--check" not in argv:
        for lang, count in update(found).items():
            print(f"{lang}: {count} new message(s) to translate in {catalog_path(lang).relative_to(SOURCE.parent)}")
    problems = check(found)
    for problem in problems:
        print(problem)
    print(f"{len(found.messages)} messages in the code; {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
