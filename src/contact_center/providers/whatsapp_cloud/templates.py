"""WhatsApp message templates: what a synced template expects, and the components that send it.

Pure functions, no I/O. Parameter mismatches (Meta's 132000, 132012, 132018) are the most
reported WhatsApp failure in other inboxes, and Meta reports them late (often in a `failed`
status) and vaguely. So `build_components` checks every value against the template's definition
before anything is sent, and refuses with an InvalidInput that names the parameter and its field.

`definition_from_graph` reads one item of `GET /{waba_id}/message_templates`. It raises ValueError
for an item whose shape is wrong; component and header kinds it does not know are kept and refused
only when someone tries to send that template, so one new Meta feature never breaks a whole sync.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contact_center.errors import InvalidInput
from contact_center.translations import Words

# --- The rules, in one place -------------------------------------------------------------------

# Only an APPROVED template is delivered. Meta refuses the others (PAUSED 132015, DISABLED 132016)
# or they are not usable yet (PENDING, IN_APPEAL) or any more (REJECTED, DELETED…).
SENDABLE_STATUSES = frozenset({"APPROVED"})
# Why each other status cannot be sent, for the operator; statuses not listed get a generic reason.
UNSENDABLE_REASONS = {
    "PENDING": Words("Meta is still reviewing it"),
    "IN_APPEAL": Words("Meta is reviewing an appeal against its rejection"),
    "REJECTED": Words("Meta rejected it"),
    "PAUSED": Words("Meta paused it after negative feedback from customers"),
    "DISABLED": Words("Meta disabled it after repeated negative feedback"),
    "PENDING_DELETION": Words("it is being deleted"),
    "DELETED": Words("it was deleted"),
    "LIMIT_EXCEEDED": Words("the account has more templates than Meta allows"),
    "ARCHIVED": Words("it was archived"),
}
# The words a refusal is built from, each translated where the sentence is said.
PARTS = {"body": Words("body"), "header": Words("header"), "button": Words("button")}
MEDIA = {"image": Words("image"), "video": Words("video"), "document": Words("document")}
MEDIA_HEADERS = {"image": Words("an image header"), "video": Words("a video header"),
                 "document": Words("a document header")}

PARAMETER_FORMATS = frozenset({"POSITIONAL", "NAMED"})
MEDIA_HEADER_FORMATS = frozenset({"IMAGE", "VIDEO", "DOCUMENT"})
HEADER_FORMATS = MEDIA_HEADER_FORMATS | {"TEXT", "LOCATION"}
KNOWN_COMPONENTS = frozenset({"HEADER", "BODY", "FOOTER", "BUTTONS"})

# Meta refuses a text parameter longer than this.
MAX_PARAMETER_CHARACTERS = 1024
# Meta refuses body and header text parameters with a newline or a tab, or with more than four
# spaces in a row (132000/132018): the layout of a template is fixed at approval.
_FORBIDDEN_WHITESPACE = re.compile(r"[\n\r\t]| {5,}")
# A copy-code (coupon) button carries at most 15 characters.
MAX_COUPON_CODE_CHARACTERS = 15

# Positional placeholders are {{1}}..{{n}}; named ones are lowercase letters, digits and
# underscores, starting with a letter ({{first_name}}). Meta tolerates spaces inside the braces.
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_POSITIONAL_NAME = re.compile(r"[1-9][0-9]*")
_NAMED_NAME = re.compile(r"[a-z][a-z0-9_]*")

# What each button type takes at send time: its send `sub_type` and the parameter type, or
# nothing. URL buttons take a parameter only when their url ends in {{1}}; quick replies take an
# optional payload (without one, WhatsApp reports the button's text); copy-code buttons need the
# code; OTP buttons of authentication templates need the code too, sent as a url parameter.
# Other types (PHONE_NUMBER, FLOW, CATALOG…) take nothing from us.
_URL, _QUICK_REPLY, _COPY_CODE, _OTP = "URL", "QUICK_REPLY", "COPY_CODE", "OTP"


# --- Definitions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateButton:
    index: int  # position among all the template's buttons: the send's "index"
    type: str  # QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, OTP…
    text: str
    url: str | None = None
    # What the button takes at send time: None, "text" (URL suffix, OTP code), "payload" (quick
    # reply, optional) or "coupon_code" (copy code).
    parameter: str | None = None

    @property
    def parameter_required(self) -> bool:
        return self.parameter in ("text", "coupon_code")


@dataclass(frozen=True)
class TemplateDefinition:
    id: str
    name: str
    language: str
    status: str
    category: str
    parameter_format: str  # POSITIONAL or NAMED
    body_text: str
    body_parameters: tuple[str, ...]  # ("1", "2", …) or names, in order of first appearance
    header_format: str | None = None  # TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION, or no header
    header_text: str | None = None
    header_parameters: tuple[str, ...] = ()
    footer_text: str | None = None
    buttons: tuple[TemplateButton, ...] = ()
    # Component or header kinds we cannot send yet (CAROUSEL, a new header format…).
    unsupported: tuple[str, ...] = ()

    @property
    def is_named(self) -> bool:
        return self.parameter_format == "NAMED"

    @property
    def sendable(self) -> bool:
        return self.status in SENDABLE_STATUSES

    @property
    def header_media_type(self) -> str | None:
        """'image', 'video' or 'document' when the header is media."""
        return self.header_format.lower() if self.header_format in MEDIA_HEADER_FORMATS else None

    def preview(self, values: TemplateValues | Sequence[str] | Mapping[str, str]) -> str:
        """The body as the customer reads it, for the timeline. A value not given keeps its
        placeholder, so a preview never hides that something is missing."""
        body = values.body if isinstance(values, TemplateValues) else values
        if isinstance(body, Mapping):
            lookup = {str(key): value for key, value in body.items()}
        else:
            lookup = {str(position): value for position, value in enumerate(body, start=1)}

        def substitute(match: re.Match) -> str:
            value = lookup.get(match.group(1))
            return value if isinstance(value, str) else match.group(0)

        return _PLACEHOLDER.sub(substitute, self.body_text)


@dataclass(frozen=True)
class TemplateValues:
    """What one send fills in. `body` and `header` are lists for positional templates ({{1}} is
    the first) and dicts for named ones. `header_media` is `{"type": "image"|"video"|"document",
    "id" or "link": …, "filename"?: …}`. `buttons` maps a button's index to its parameter."""

    body: Sequence[str] | Mapping[str, str] = ()
    header: Sequence[str] | Mapping[str, str] = ()
    header_media: Mapping[str, str] | None = None
    buttons: Mapping[int, str] = field(default_factory=dict)


def definition_from_graph(item: dict) -> TemplateDefinition:
    """One item of `GET /{waba_id}/message_templates` as a TemplateDefinition; ValueError naming
    the template and the field when the item is not the shape Meta documents."""
    if not isinstance(item, dict):
        raise ValueError(f"a message template must be an object, not {type(item).__name__}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a message template has no name (id {item.get('id')!r})")
    where = f'template "{name}"'

    def text_field(source: dict, key: str, path: str, *, required: bool = True) -> str | None:
        value = source.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or (required and not value):
            raise ValueError(f"{where}: {path} must be a non-empty string, not {value!r}")
        return value

    template_id = item.get("id")
    if isinstance(template_id, int) and not isinstance(template_id, bool):
        template_id = str(template_id)  # ids are strings in the Graph API; tolerate a number
    if not isinstance(template_id, str) or not template_id:
        raise ValueError(f"{where}: id must be a non-empty string, not {template_id!r}")
    language = text_field(item, "language", "language")
    status = text_field(item, "status", "status").upper()
    category = text_field(item, "category", "category").upper()
    parameter_format = item.get("parameter_format") or "POSITIONAL"
    if not isinstance(parameter_format, str) or parameter_format.upper() not in PARAMETER_FORMATS:
        raise ValueError(f"{where}: parameter_format must be POSITIONAL or NAMED, not {parameter_format!r}")
    parameter_format = parameter_format.upper()

    components = item.get("components")
    if not isinstance(components, list):
        raise ValueError(f"{where}: components must be a list, not {components!r}")

    found: dict[str, dict] = {}
    unsupported: list[str] = []
    for position, component in enumerate(components):
        path = f"components[{position}]"
        if not isinstance(component, dict):
            raise ValueError(f"{where}: {path} must be an object, not {component!r}")
        kind = component.get("type")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"{where}: {path}.type is missing")
        kind = kind.upper()
        if kind not in KNOWN_COMPONENTS:
            unsupported.append(kind)
            continue
        if kind in found:
            raise ValueError(f"{where}: {path} is a second {kind} component")
        found[kind] = component | {"_path": path}

    if "BODY" not in found:
        raise ValueError(f"{where}: components has no BODY")
    body = found["BODY"]
    body_text = text_field(body, "text", f"{body['_path']}.text")
    body_parameters = _placeholders(body_text, parameter_format, f"{where}: {body['_path']}.text")

    header_format = header_text = None
    header_parameters: tuple[str, ...] = ()
    if "HEADER" in found:
        header = found["HEADER"]
        header_format = text_field(header, "format", f"{header['_path']}.format").upper()
        if header_format not in HEADER_FORMATS:
            unsupported.append(f"HEADER {header_format}")
        elif header_format == "TEXT":
            header_text = text_field(header, "text", f"{header['_path']}.text")
            header_parameters = _placeholders(
                header_text, parameter_format, f"{where}: {header['_path']}.text"
            )
        elif header_format == "LOCATION":
            unsupported.append("HEADER LOCATION")

    footer_text = None
    if "FOOTER" in found:
        footer_text = text_field(found["FOOTER"], "text", f"{found['FOOTER']['_path']}.text")

    buttons: list[TemplateButton] = []
    if "BUTTONS" in found:
        path = f"{found['BUTTONS']['_path']}.buttons"
        raw_buttons = found["BUTTONS"].get("buttons")
        if not isinstance(raw_buttons, list) or not raw_buttons:
            raise ValueError(f"{where}: {path} must be a non-empty list, not {raw_buttons!r}")
        for index, raw in enumerate(raw_buttons):
            buttons.append(_button(raw, index, where, f"{path}[{index}]"))

    return TemplateDefinition(
        id=template_id,
        name=name,
        language=language,
        status=status,
        category=category,
        parameter_format=parameter_format,
        body_text=body_text,
        body_parameters=body_parameters,
        header_format=header_format,
        header_text=header_text,
        header_parameters=header_parameters,
        footer_text=footer_text,
        buttons=tuple(buttons),
        unsupported=tuple(unsupported),
    )


def _placeholders(text: str, parameter_format: str, where: str) -> tuple[str, ...]:
    """The distinct placeholders of a text, in order of first appearance; positional ones must
    be exactly {{1}}..{{n}} (Meta's own rule when it approves a template)."""
    names: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1)
        valid = _POSITIONAL_NAME if parameter_format == "POSITIONAL" else _NAMED_NAME
        if not valid.fullmatch(name):
            kind = "a positional" if parameter_format == "POSITIONAL" else "a named"
            raise ValueError(f"{where}: {match.group(0)} is not {kind} parameter")
        if name not in names:
            names.append(name)
    if parameter_format == "POSITIONAL":
        numbers = sorted(int(name) for name in names)
        if numbers != list(range(1, len(numbers) + 1)):
            shown = ", ".join(f"{{{{{number}}}}}" for number in numbers)
            raise ValueError(f"{where}: positional parameters must be {{{{1}}}}..{{{{n}}}} without gaps, not {shown}")
        return tuple(str(number) for number in numbers)
    return tuple(names)


def _button(raw: Any, index: int, where: str, path: str) -> TemplateButton:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: {path} must be an object, not {raw!r}")
    kind = raw.get("type")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"{where}: {path}.type is missing")
    kind = kind.upper()
    text = raw.get("text") if isinstance(raw.get("text"), str) else ""
    url = raw.get("url")
    if url is not None and not isinstance(url, str):
        raise ValueError(f"{where}: {path}.url must be a string, not {url!r}")
    parameter = None
    if kind == _URL:
        if not url:
            raise ValueError(f"{where}: {path}.url is missing on a URL button")
        parameter = "text" if _PLACEHOLDER.search(url) else None
    elif kind == _QUICK_REPLY:
        parameter = "payload"
    elif kind == _COPY_CODE:
        parameter = "coupon_code"
    elif kind == _OTP:
        parameter = "text"
    return TemplateButton(index=index, type=kind, text=text, url=url, parameter=parameter)


# --- Building a send ---------------------------------------------------------------------------


def build_components(definition: TemplateDefinition, values: TemplateValues) -> list[dict]:
    """The `template.components` of a send, in Meta's shape, after checking every value against
    the definition. InvalidInput names the parameter and its field on the first problem found."""
    quoted = Words('the template "{name}"', name=definition.name)
    if not definition.sendable:
        reason = UNSENDABLE_REASONS.get(definition.status, Words("only APPROVED templates can be sent"))
        raise InvalidInput("{quoted} is {status} and cannot be sent: {reason}", field="template", quoted=quoted,
                           status=definition.status, reason=reason)
    if definition.unsupported:
        raise InvalidInput("{quoted} uses {unsupported}, which cannot be sent from here yet", field="template",
                           quoted=quoted, unsupported=", ".join(definition.unsupported))

    components: list[dict] = []
    header = _header_component(definition, values, quoted)
    if header:
        components.append(header)
    body = _text_parameters(definition, definition.body_parameters, values.body, "body", quoted)
    if body:
        components.append({"type": "body", "parameters": body})
    components.extend(_button_components(definition, values.buttons, quoted))
    return components


def _text_parameters(
    definition: TemplateDefinition,
    expected: tuple[str, ...],
    given: Sequence[str] | Mapping[str, str],
    part: str,  # "body" or "header"
    quoted: Words,
) -> list[dict]:
    field_root = f"parameters.{part}"
    words = PARTS[part]
    if definition.is_named:
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            if not expected:
                raise InvalidInput("{quoted} uses named parameters; give the {part} parameters by name (none)",
                                   field=field_root, quoted=quoted, part=words)
            raise InvalidInput("{quoted} uses named parameters; give the {part} parameters by name ({names})",
                               field=field_root, quoted=quoted, part=words, names=_list_names(expected))
        for name in given:
            if name not in expected:
                where = f"{field_root}.{name}"
                if not expected:
                    raise InvalidInput('{quoted} has no {part} parameter named "{name}"; it takes no {part} parameters',
                                       field=where, quoted=quoted, part=words, name=name)
                if part == "body":  # "parameter" alone means the body's
                    raise InvalidInput('{quoted} has no parameter named "{name}"; it takes: {names}', field=where,
                                       quoted=quoted, name=name, names=_list_names(expected))
                raise InvalidInput('{quoted} has no {part} parameter named "{name}"; it takes: {names}', field=where,
                                   quoted=quoted, part=words, name=name, names=_list_names(expected))
        parameters = []
        for name in expected:
            path = f"{field_root}.{name}"
            if name not in given:
                raise InvalidInput("{quoted} needs the {part} parameter \"{name}\"; it was not given",
                                   quoted=quoted, part=words, name=name, field=path)
            text = _checked_text(given[name], Words('{part} parameter "{name}"', part=words, name=name), part, quoted,
                                 path)
            parameters.append({"type": "text", "parameter_name": name, "text": text})
        return parameters

    if given is None:
        given = ()
    if isinstance(given, (str, bytes, Mapping)) or not isinstance(given, Sequence):
        if not expected:
            raise InvalidInput("{quoted} uses positional parameters; give the {part} parameters as a list in order "
                               "(none)", field=field_root, quoted=quoted, part=words)
        raise InvalidInput("{quoted} uses positional parameters; give the {part} parameters as a list in order "
                           "({positions})", field=field_root, quoted=quoted, part=words,
                           positions=_list_positions(len(expected)))
    if len(given) != len(expected):
        where = f"{field_root}[{min(len(given), len(expected))}]"  # the first missing or the first extra one
        values = {"quoted": quoted, "part": words, "expected": len(expected), "given": len(given),
                  "positions": _list_positions(len(expected))}
        if not expected and len(given) == 1:
            raise InvalidInput("{quoted} takes no {part} parameters; {given} was given", field=where, **values)
        if not expected:
            raise InvalidInput("{quoted} takes no {part} parameters; {given} were given", field=where, **values)
        if len(expected) == 1:
            raise InvalidInput("{quoted} takes 1 {part} parameter ({positions}); {given} were given", field=where,
                               **values)
        if len(given) == 1:
            raise InvalidInput("{quoted} takes {expected} {part} parameters ({positions}); {given} was given",
                               field=where, **values)
        raise InvalidInput("{quoted} takes {expected} {part} parameters ({positions}); {given} were given",
                           field=where, **values)
    parameters = []
    for position, value in enumerate(given, start=1):
        label = Words("{part} parameter {{{position}}}", part=words, position=position)
        path = f"{field_root}[{position - 1}]"
        parameters.append({"type": "text", "text": _checked_text(value, label, part, quoted, path)})
    return parameters


def _checked_text(value: Any, label: Words, part: str, quoted: Words, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput("{label} of {quoted} must be text, not {type}", field=path, label=label, quoted=quoted,
                           type=type(value).__name__)
    if not value.strip():
        # Meta refuses empty parameters, and a blank in a sent message cannot be taken back.
        raise InvalidInput("{label} of {quoted} is empty", label=label, quoted=quoted, field=path)
    if len(value) > MAX_PARAMETER_CHARACTERS:
        raise InvalidInput("{label} of {quoted} has {length} characters; at most {most} are allowed", field=path,
                           label=label, quoted=quoted, length=len(value), most=MAX_PARAMETER_CHARACTERS)
    if part in ("body", "header") and _FORBIDDEN_WHITESPACE.search(value):
        raise InvalidInput("{label} of {quoted} contains a line break, a tab or more than 4 spaces in a row, which "
                           "WhatsApp refuses in template parameters", field=path, label=label, quoted=quoted)
    return value


def _header_component(definition: TemplateDefinition, values: TemplateValues, quoted: Words) -> dict | None:
    media = values.header_media
    media_type = definition.header_media_type
    if media_type is None:
        if media is not None:
            raise InvalidInput("{quoted} has no media header; remove the header media", quoted=quoted,
                               field="parameters.header_media")
        if definition.header_format is None:
            if values.header:
                raise InvalidInput("{quoted} has no header; remove the header parameters",
                                   quoted=quoted, field="parameters.header")
            return None
        parameters = _text_parameters(definition, definition.header_parameters, values.header, "header", quoted)
        return {"type": "header", "parameters": parameters} if parameters else None

    path = "parameters.header_media"
    header, medium = MEDIA_HEADERS[media_type], MEDIA[media_type]
    if values.header:
        raise InvalidInput("{quoted} has {header}, which takes media, not text parameters", field="parameters.header",
                           quoted=quoted, header=header)
    if media is None:
        raise InvalidInput("{quoted} has {header}; the {medium} was not given", field=path, quoted=quoted,
                           header=header, medium=medium)
    if not isinstance(media, Mapping):
        raise InvalidInput("the header media of {quoted} must be an object", quoted=quoted, field=path)
    given_type = media.get("type")
    if given_type != media_type:
        raise InvalidInput("{quoted} has {header}; the header media given is '{given}'", field=f"{path}.type",
                           quoted=quoted, header=header, given=given_type)
    allowed = {"type", "id", "link"} | ({"filename"} if media_type == "document" else set())
    for key in media:
        if key not in allowed:
            raise InvalidInput("the header media of {quoted} has an unknown field '{key}'; it takes: {allowed}",
                               field=f"{path}.{key}", quoted=quoted, key=key, allowed=", ".join(sorted(allowed)))
    sources = [key for key in ("id", "link") if key in media]
    if len(sources) != 1:
        # Meta takes an uploaded media id or a public link, never both.
        raise InvalidInput("the header {medium} of {quoted} needs exactly one of id or link",
                           medium=medium, quoted=quoted, field=path)
    source = sources[0]
    reference = media[source]
    if not isinstance(reference, str) or not reference.strip():
        raise InvalidInput("the header {medium} {source} of {quoted} is empty",
                           medium=medium, source=source, quoted=quoted, field=f"{path}.{source}")
    if source == "link" and not reference.lower().startswith(("https://", "http://")):
        raise InvalidInput("the header {medium} link of {quoted} must be an http(s) URL", medium=medium,
                           quoted=quoted, field=f"{path}.link")
    payload = {source: reference}
    if "filename" in media:
        filename = media["filename"]
        if not isinstance(filename, str) or not filename.strip():
            raise InvalidInput("the header document filename of {quoted} is empty",
                               quoted=quoted, field=f"{path}.filename")
        payload["filename"] = filename
    return {"type": "header", "parameters": [{"type": media_type, media_type: payload}]}


def _button_components(
    definition: TemplateDefinition, given: Mapping[int, str] | None, quoted: Words
) -> list[dict]:
    given = given or {}
    if not isinstance(given, Mapping):
        raise InvalidInput("the button parameters of {quoted} must map a button index to its value", quoted=quoted,
                           field="parameters.buttons")
    by_index = {button.index: button for button in definition.buttons}
    for index in given:
        button = by_index.get(index) if isinstance(index, int) and not isinstance(index, bool) else None
        if button is None or button.parameter is None:
            takers = ", ".join(f'{b.index} ("{b.text}")' for b in definition.buttons if b.parameter)
            takes = (Words("buttons that take one: {takers}", takers=takers) if takers
                     else Words("none of its buttons takes one"))
            where = f"parameters.buttons[{index}]"
            if button is None:
                raise InvalidInput("{quoted} has no button {index}; {takes}", field=where, quoted=quoted,
                                   index=repr(index), takes=takes)
            raise InvalidInput('{quoted} button {index} ("{text}") takes no parameter; {takes}', field=where,
                               quoted=quoted, index=index, text=button.text, takes=takes)

    components = []
    for button in definition.buttons:
        path = f"parameters.buttons[{button.index}]"
        label = Words('button {index} ("{text}")', index=button.index, text=button.text)
        if button.parameter is None:
            continue
        if button.index not in given:
            if not button.parameter_required:
                continue  # a quick reply without a payload: WhatsApp reports the button's text
            if button.type == _URL:
                raise InvalidInput("{label} of {quoted} needs its URL parameter ({url}); it was not given", field=path,
                                   label=label, quoted=quoted, url=button.url)
            raise InvalidInput("{label} of {quoted} needs its code; it was not given", field=path, label=label,
                               quoted=quoted)
        value = _checked_text(given[button.index], label, "button", quoted, path)
        if button.parameter == "coupon_code":
            if len(value) > MAX_COUPON_CODE_CHARACTERS:
                raise InvalidInput("{label} of {quoted} has a {length}-character code; at most {most} are allowed",
                                   field=path, label=label, quoted=quoted, length=len(value),
                                   most=MAX_COUPON_CODE_CHARACTERS)
            sub_type, parameter = "copy_code", {"type": "coupon_code", "coupon_code": value}
        elif button.parameter == "payload":
            sub_type, parameter = "quick_reply", {"type": "payload", "payload": value}
        else:
            sub_type, parameter = "url", {"type": "text", "text": value}
        components.append(
            {"type": "button", "sub_type": sub_type, "index": str(button.index), "parameters": [parameter]}
        )
    return components


def _list_positions(count: int) -> str:
    if count == 0:
        return ""
    if count == 1:
        return "{{1}}"
    return f"{{{{1}}}}…{{{{{count}}}}}"


def _list_names(names: tuple[str, ...]) -> str:
    return ", ".join(names)
