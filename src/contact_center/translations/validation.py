"""Pydantic's refusals of a request's fields, said in the reader's language.

An API client that does not ask for a language reads pydantic's English as it is; otherwise each
common kind of refusal has its sentence here (pydantic's own English, with its context's values as
placeholders), and a schema validator's own refusal (an InvalidValue) translates itself.
"""

from __future__ import annotations

from contact_center.translations import Words

# Pydantic's error type → its sentence, with the error's context as parameters.
SENTENCES = {
    "missing": Words("Field required"),
    "extra_forbidden": Words("Extra inputs are not permitted"),
    "string_type": Words("Input should be a valid string"),
    "string_too_short": Words("String should have at least {min_length} characters"),
    "string_too_long": Words("String should have at most {max_length} characters"),
    "int_type": Words("Input should be a valid integer"),
    "int_parsing": Words("Input should be a valid integer, unable to parse string as an integer"),
    "int_from_float": Words("Input should be a valid integer, got a number with a fractional part"),
    "float_type": Words("Input should be a valid number"),
    "float_parsing": Words("Input should be a valid number, unable to parse string as a number"),
    "decimal_parsing": Words("Input should be a valid decimal"),
    "bool_type": Words("Input should be a valid boolean"),
    "bool_parsing": Words("Input should be a valid boolean, unable to interpret input"),
    "greater_than": Words("Input should be greater than {gt}"),
    "greater_than_equal": Words("Input should be greater than or equal to {ge}"),
    "less_than": Words("Input should be less than {lt}"),
    "less_than_equal": Words("Input should be less than or equal to {le}"),
    "too_short": Words("List should have at least {min_length} items"),
    "too_long": Words("List should have at most {max_length} items"),
    "list_type": Words("Input should be a valid list"),
    "dict_type": Words("Input should be a valid dictionary"),
    "model_attributes_type": Words("Input should be a valid dictionary or object to extract fields from"),
    "literal_error": Words("Input should be {expected}"),
    "enum": Words("Input should be {expected}"),
    "date_parsing": Words("Input should be a valid date in the format YYYY-MM-DD"),
    "date_from_datetime_parsing": Words("Input should be a valid date in the format YYYY-MM-DD"),
    "datetime_parsing": Words("Input should be a valid datetime, e.g. 2026-12-01T08:00:00-03:00"),
    "datetime_from_date_parsing": Words("Input should be a valid datetime, e.g. 2026-12-01T08:00:00-03:00"),
    "time_parsing": Words("Input should be a valid time, e.g. 08:00"),
    "url_parsing": Words("Input should be a valid URL"),
    "json_invalid": Words("the body is not valid JSON: {error} (at character {position})"),
}


def problem_text(lang: str | None, error: dict) -> str:
    context = error.get("ctx") or {}
    if error.get("type") == "json_invalid":
        position = error["loc"][-1] if error.get("loc") else "?"
        return Words(SENTENCES["json_invalid"], error=context.get("error"), position=position).text(lang)
    if lang is None:
        return error["msg"]
    reason = context.get("error")
    if error.get("type") == "value_error" and isinstance(reason, Words):
        return reason.text(lang)
    sentence = SENTENCES.get(error.get("type"))
    if sentence is None:
        return error["msg"]
    return Words(sentence, **{name: value for name, value in context.items() if name != "error"}).text(lang)


class Problem(Words):
    """One of pydantic's refusals kept as a parameter of a sentence ("{where}: {problem}"): said in
    the reader's language, and as pydantic wrote it where the code's own words are wanted."""

    def __init__(self, error: dict):
        super().__init__(error["msg"])
        self.error = error

    def text(self, lang: str | None) -> str:
        return problem_text(lang, self.error).removeprefix("Value error, ")
