import pickle

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from contact_center.phones import (
    BR_AREA_CODES,
    BR_CARRIER_CODES,
    PhoneIdentity,
    PhoneNumberError,
    _fast_br,
    _prepare,
    _slow,
    identify,
    is_mobile,
    kolmeya_form,
    match_key,
    normalize,
    whatsapp_form,
)

MOBILE = "+5548991910234"
OLD_MOBILE = "+554891910234"  # the same line before the ninth digit, as WhatsApp reports it

# (as written, E.164, match key)
WRITTEN_FORMS = [
    # A mobile with the ninth digit, every way we have seen it.
    ("+55 48 99191-0234", MOBILE, MOBILE),
    ("5548991910234", MOBILE, MOBILE),
    ("+5548991910234", MOBILE, MOBILE),
    ("(48) 99191-0234", MOBILE, MOBILE),
    ("048 99191-0234", MOBILE, MOBILE),
    ("(048) 99191-0234", MOBILE, MOBILE),
    ("0XX48991910234", MOBILE, MOBILE),
    ("0 XX 48 99191-0234", MOBILE, MOBILE),
    ("(0xx48) 99191-0234", MOBILE, MOBILE),
    ("0 21 48 99191-0234", MOBILE, MOBILE),
    ("0154899191 0234", MOBILE, MOBILE),
    ("041 (48) 99191-0234", MOBILE, MOBILE),
    ("48991910234", MOBILE, MOBILE),
    ("48 9 9191-0234", MOBILE, MOBILE),
    ("48.99191.0234", MOBILE, MOBILE),
    ("55 (48) 9.9191.0234", MOBILE, MOBILE),
    ("+55 (48) 99191 0234", MOBILE, MOBILE),
    ("tel:+55-48-99191-0234", MOBILE, MOBILE),
    ("0055 48 99191 0234", MOBILE, MOBILE),
    ("  +55 48 99191-0234\n", MOBILE, MOBILE),
    ("+55\u00a048\u00a099191\u20130234", MOBILE, MOBILE),  # non-breaking spaces, en dash
    ("+55 048 99191-0234", MOBILE, MOBILE),
    ("\uff0b55 48 99191-0234", MOBILE, MOBILE),  # full-width plus
    ("\uff14\uff18 \uff19\uff19\uff11\uff19\uff11-\uff10\uff12\uff13\uff14", MOBILE, MOBILE),  # full-width digits
    # The same mobile without the ninth digit: kept as written, same key.
    ("554891910234", OLD_MOBILE, MOBILE),
    ("+55 48 9191-0234", OLD_MOBILE, MOBILE),
    ("(48) 9191-0234", OLD_MOBILE, MOBILE),
    ("048 9191-0234", OLD_MOBILE, MOBILE),
    ("0 XX 48 9191-0234", OLD_MOBILE, MOBILE),
    ("+55 11 8765-4321", "+551187654321", "+5511987654321"),
    ("(21) 7012-3456", "+552170123456", "+5521970123456"),
    ("(31) 6123-4567", "+553161234567", "+5531961234567"),
    ("+55 11 90000-0001", "+5511900000001", "+5511900000001"),
    # Landlines: subscriber starts with 2-5, never merged with a mobile.
    ("(11) 3333-4444", "+551133334444", "+551133334444"),
    ("011 3333-4444", "+551133334444", "+551133334444"),
    ("0XX11 3333-4444", "+551133334444", "+551133334444"),
    ("0 15 11 3333 4444", "+551133334444", "+551133334444"),
    ("+55 48 3333-4444", "+554833334444", "+554833334444"),
    ("554833334444", "+554833334444", "+554833334444"),
    ("(61) 2222.3333", "+556122223333", "+556122223333"),
    ("55 51 5555-0000", "+555155550000", "+555155550000"),
    ("+55 (48) 3333-4444 ramal 12", "+554833334444", "+554833334444"),
    ("(11) 4000-0001 ext. 3", "+551140000001", "+551140000001"),
    # A 13-digit mobile whose last 8 digits look like a landline is its own key.
    ("+55 48 9 3333-4444", "+5548933334444", "+5548933334444"),
    # Area code 55 (RS) next to country code 55.
    ("(55) 99191-0234", "+5555991910234", "+5555991910234"),
    ("55 55 3333 4444", "+555533334444", "+555533334444"),
    ("5555991910234", "+5555991910234", "+5555991910234"),
    # International: + or 00 keeps the country.
    ("+1 650 253 0000", "+16502530000", "+16502530000"),
    ("00351 912 345 678", "+351912345678", "+351912345678"),
    ("+351 912 345 678", "+351912345678", "+351912345678"),
    ("+44 20 7946 0000", "+442079460000", "+442079460000"),
    ("0044 20 7946 0000", "+442079460000", "+442079460000"),
    ("0021 1 650 253 0000", "+16502530000", "+16502530000"),  # Brazilian 00 + carrier + country
    ("+54 9 11 1234-5678", "+5491112345678", "+5491112345678"),
    ("+1 650 253 0000 ext. 4", "+16502530000", "+16502530000"),
]


@pytest.mark.parametrize(("raw", "e164", "key"), WRITTEN_FORMS)
def test_written_forms(raw, e164, key):
    assert normalize(raw) == e164
    assert match_key(raw) == key
    assert identify(raw) == PhoneIdentity(raw, e164, key)


def test_table_covers_enough_forms():
    assert len(WRITTEN_FORMS) >= 40


REJECTED = [
    ("", "empty"),
    ("   ", "blank"),
    ("12ab", "letters"),
    ("1-800-FLOWERS", "letters"),
    ("não tenho", "letters"),
    ("+55 48 99191-0234 x", "letters"),
    ("123", "too short to be a phone number (3 digits)"),
    ("9191-0234", "missing the area code"),
    ("99191-0234", "missing the area code"),
    ("(00) 99191-0234", "area code (DDD) '00'"),
    ("(20) 99191-0234", "area code (DDD) '20'"),
    ("(10) 3333-4444", "area code (DDD) '10'"),
    ("+55 (20) 99191-0234", "area code (DDD) '20'"),
    ("020 99191-0234", "area code (DDD) '20'"),
    ("(48) 89191-0234", "9-digit numbers after the DDD start with 9"),
    ("(48) 1191-0234", "8-digit numbers after the DDD start with 2 to 9"),
    ("(48) 0191-0234", "8-digit numbers after the DDD start with 2 to 9"),
    ("0800 123 4567", "service number"),
    ("48 99191-02345", "too long for a Brazilian number"),
    ("351912345678", "too long for a Brazilian number"),
    ("16502530000", "9-digit numbers after the DDD start with 9"),  # BR wins without + or 00
    ("+55 48 99191-02345", "too long for a Brazilian number"),
    ("123456789012345678", "too long to be a phone number (18 digits)"),
    ("48#99191-0234", "unexpected character '#'"),
    ("48*99191-0234", "unexpected character '*'"),
    ("+55+48 99191-0234", "'+' can only come first"),
    ("+999 1234 5678", "unknown country code"),
    ("+1 650 253", "too short"),
    ("+44 20 7946 0000 0000", "too long"),
    ("---", "no digits"),
]


@pytest.mark.parametrize(("raw", "why"), REJECTED)
def test_rejected(raw, why):
    with pytest.raises(PhoneNumberError) as caught:
        normalize(raw)
    message = str(caught.value)
    assert message.startswith(repr(raw))
    assert why in message
    assert caught.value.raw == raw
    with pytest.raises(PhoneNumberError):
        identify(raw)
    with pytest.raises(PhoneNumberError):
        match_key(raw)


def test_error_message_examples():
    with pytest.raises(PhoneNumberError, match=r"^'12ab' is not a phone number: it has letters$"):
        normalize("12ab")
    with pytest.raises(PhoneNumberError, match=r"^'123' is too short to be a phone number \(3 digits\)$"):
        normalize("123")


def test_error_is_a_value_error_and_pickles():
    err = PhoneNumberError("12ab", "is not a phone number: it has letters")
    assert isinstance(err, ValueError)
    assert str(pickle.loads(pickle.dumps(err))) == str(err)


def test_non_string_is_a_type_error():
    with pytest.raises(TypeError):
        normalize(5548991910234)  # type: ignore[arg-type]


def test_other_default_region():
    assert normalize("(650) 253-0000", region="US") == "+16502530000"
    assert normalize("+55 48 99191-0234", region="US") == MOBILE


@pytest.mark.parametrize(
    ("raw", "kolmeya"),
    [
        ("(48) 99191-0234", "5548991910234"),
        ("554891910234", "5548991910234"),  # sent with the ninth digit
        ("(11) 3333-4444", "551133334444"),
        ("+1 650 253 0000", "16502530000"),
    ],
)
def test_provider_forms(raw, kolmeya):
    assert kolmeya_form(raw) == kolmeya
    assert whatsapp_form(raw) == kolmeya


@pytest.mark.parametrize(
    ("number", "mobile"),
    [
        (MOBILE, True),
        (OLD_MOBILE, True),
        ("+552170123456", True),
        ("+553161234567", True),
        ("+551133334444", False),
        ("+555155550000", False),
        ("+447911123456", True),  # UK mobile
        ("+442079460000", False),  # UK landline
        ("+16502530000", True),  # the US does not tell them apart
        ("(48) 99191-0234", True),  # any written form works
    ],
)
def test_is_mobile(number, mobile):
    assert is_mobile(number) is mobile


# --- property tests --------------------------------------------------------------

DIGIT = st.sampled_from("0123456789")
AREA_CODES = st.sampled_from(sorted(BR_AREA_CODES))


def _digits(n):
    return st.lists(DIGIT, min_size=n, max_size=n).map("".join)


@st.composite
def br_lines(draw, kind=None):
    """(area code, subscriber number) of a valid Brazilian line."""
    kind = kind or draw(st.sampled_from(["mobile", "old_mobile", "landline"]))
    first = {"mobile": "9", "old_mobile": draw(st.sampled_from("6789")), "landline": draw(st.sampled_from("2345"))}
    size = 8 if kind == "mobile" else 7
    return draw(AREA_CODES), first[kind] + draw(_digits(size))


# How people write the part before the area code, and whether the fast path must take it.
PREFIXES = [
    ("", True),
    ("+55", True),
    ("55", True),
    ("0", True),
    ("0055", True),
    ("00 55", True),
    ("tel:+55", True),
    ("0XX", True),
    ("0xx", True),
    ("0 XX ", True),
    ("+55 0", False),  # left to phonenumbers
] + [(f"0{code}", True) for code in sorted(BR_CARRIER_CODES)] + [(f"0 {code} ", True) for code in ("15", "21", "41")]

SEPARATORS = st.sampled_from(["", " ", "-", ".", " - ", "\u00a0", "  "])


@st.composite
def written(draw, line):
    """One written form of a Brazilian line: prefix, area code and number split any way."""
    ddd, subscriber = line
    prefix, fast = draw(st.sampled_from(PREFIXES))
    area = draw(st.sampled_from([ddd, f"({ddd})", f"({ddd}) "]))
    if prefix in ("0", "0XX", "0xx") and draw(st.booleans()):
        area, prefix = f"({prefix}{ddd})", ""
    cut = draw(st.integers(min_value=0, max_value=len(subscriber)))
    cut2 = draw(st.integers(min_value=cut, max_value=len(subscriber)))
    parts = [subscriber[:cut], subscriber[cut:cut2], subscriber[cut2:]]
    body = draw(SEPARATORS).join(p for p in parts if p)
    raw = prefix + draw(SEPARATORS) + area + draw(SEPARATORS) + body
    if draw(st.booleans()):
        raw = f" {raw} "
    return raw, fast


@st.composite
def br_written(draw, kind=None):
    ddd, subscriber = draw(br_lines(kind))
    raw, fast = draw(written((ddd, subscriber)))
    return ddd, subscriber, raw, fast


@settings(max_examples=500)
@given(br_written())
def test_fast_path_agrees_with_phonenumbers(case):
    ddd, subscriber, raw, must_be_fast = case
    expected = f"+55{ddd}{subscriber}"
    plus, digits = _prepare(raw)
    fast = _fast_br(plus, digits)
    assert _slow(raw, plus, digits, "BR") == expected
    if must_be_fast:
        assert fast == expected
    else:
        assert fast in (None, expected)
    assert normalize(raw) == expected
    # phonenumbers reads the untouched text the same way (it has no notion of
    # 0XX or of 00 without a carrier code, which we translate before parsing).
    if "x" not in raw.lower() and not digits.startswith("00"):
        parsed = phonenumbers.parse(raw, "BR")
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == expected


@st.composite
def digit_shapes(draw):
    """Digit strings shaped around the Brazilian lengths, valid or not."""
    prefix = draw(st.sampled_from(["", "", "0", "00", "55", "0055", "90"]) | _digits(2).map(lambda d: "0" + d))
    return draw(st.booleans()), prefix + draw(_digits(2)) + draw(st.integers(6, 10).flatmap(_digits))


@settings(max_examples=1000)
@given(digit_shapes())
def test_fast_path_never_contradicts_the_slow_path(shape):
    plus, digits = shape
    assume(8 <= len(digits) <= 17)
    fast = _fast_br(plus, digits)
    try:
        slow = _slow(digits, plus, digits, "BR")
    except PhoneNumberError:
        slow = None
    if fast is not None:
        assert fast == slow


@st.composite
def international(draw):
    region = draw(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS - {"BR"})))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]))
    example = phonenumbers.example_number_for_type(region, kind)
    assume(example is not None)
    style = draw(st.sampled_from([phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]))
    return phonenumbers.format_number(example, style), example


@settings(max_examples=200)
@given(br_written() | international().map(lambda pair: (None, None, pair[0], False)))
def test_idempotent(case):
    raw = case[2]
    e164, key = normalize(raw), match_key(raw)
    assert normalize(e164) == e164
    assert match_key(e164) == key
    assert match_key(key) == key
    assert normalize(key) == key


@settings(max_examples=200)
@given(international())
def test_international_keeps_its_country(pair):
    raw, example = pair
    e164 = normalize(raw)
    assert e164 == phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert match_key(raw) == e164
    assert kolmeya_form(raw) == e164[1:]
    assert kolmeya_form(raw).startswith(str(example.country_code))


@settings(max_examples=300)
@given(br_lines("old_mobile"), st.data())
def test_key_is_the_same_for_every_form_of_a_mobile(line, data):
    ddd, old = line
    new = "9" + old
    key = f"+55{ddd}{new}"
    for subscriber in (old, new, old, new):
        raw, _ = data.draw(written((ddd, subscriber)))
        assert match_key(raw) == key
        assert identify(raw).key == key
        assert is_mobile(normalize(raw))


@settings(max_examples=300)
@given(br_lines("landline"), st.data())
def test_a_landline_never_gets_a_mobiles_key(line, data):
    ddd, subscriber = line
    raw, _ = data.draw(written((ddd, subscriber)))
    key = match_key(raw)
    assert key == normalize(raw) == f"+55{ddd}{subscriber}"
    assert key != match_key(f"+55{ddd}9{subscriber}")  # the 13-digit mobile with the same last 8 digits
    assert len(key) == 13  # mobile keys always carry 11 national digits
    assert not is_mobile(key)


@settings(max_examples=300)
@given(br_written())
def test_provider_forms_are_digits_with_country_code(case):
    _, _, raw, _ = case
    for form in (kolmeya_form(raw), whatsapp_form(raw)):
        assert "+" not in form
        assert form.isdigit()
        assert form.startswith("55")
        assert form == match_key(raw)[1:]
