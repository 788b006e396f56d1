import pytest
from hypothesis import given
from hypothesis import strategies as st

from contact_center.messaging.segments import GSM7_BASIC, GSM7_EXTENSION, SegmentInfo, count_segments


def test_empty_text_is_zero_segments():
    assert count_segments("") == SegmentInfo("GSM-7", 0, 0, 160, 160)


@pytest.mark.parametrize(
    ("length", "segments", "per_segment", "remaining"),
    [
        (1, 1, 160, 159),
        (160, 1, 160, 0),
        (161, 2, 153, 145),
        (153 * 2, 2, 153, 0),
        (153 * 2 + 1, 3, 153, 152),
        (153 * 3, 3, 153, 0),
    ],
)
def test_gsm7_boundaries(length, segments, per_segment, remaining):
    assert count_segments("a" * length) == SegmentInfo("GSM-7", length, segments, per_segment, remaining)


@pytest.mark.parametrize(
    ("length", "segments", "per_segment", "remaining"),
    [
        (1, 1, 70, 69),
        (70, 1, 70, 0),
        (71, 2, 67, 63),
        (67 * 2, 2, 67, 0),
        (67 * 2 + 1, 3, 67, 66),
    ],
)
def test_ucs2_boundaries(length, segments, per_segment, remaining):
    text = "ã" * length
    assert count_segments(text) == SegmentInfo("UCS-2", length, segments, per_segment, remaining)


def test_a_single_non_gsm_character_makes_the_whole_text_ucs2():
    text = "a" * 69 + "ç"
    assert count_segments(text) == SegmentInfo("UCS-2", 70, 1, 70, 0)
    assert count_segments(text + "a").segments == 2


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION))
def test_extension_characters_count_two(char):
    info = count_segments(f"R{char}1")
    assert info.encoding == "GSM-7"
    assert info.characters == 4


def test_extension_characters_at_the_single_segment_boundary():
    assert count_segments("€" * 80) == SegmentInfo("GSM-7", 160, 1, 160, 0)
    assert count_segments("a" * 159 + "€") == SegmentInfo("GSM-7", 161, 2, 153, 145)


def test_extension_character_is_not_split_across_parts():
    # 152 + 2 would straddle the end of part one, so the escape pair moves to part two.
    text = "a" * 152 + "€" + "a" * 152
    info = count_segments(text)
    assert info.characters == 306  # a plain division would say 2 parts
    assert info.segments == 3
    assert info.remaining == 152
    fits = "a" * 152 + "€" + "a" * 151
    assert count_segments(fits).segments == 2


def test_emoji_counts_two_utf16_units():
    assert count_segments("😀") == SegmentInfo("UCS-2", 2, 1, 70, 68)
    assert count_segments("😀" * 35) == SegmentInfo("UCS-2", 70, 1, 70, 0)
    # 33 emoji fill 66 units of part one; the 34th does not fit in the last unit.
    assert count_segments("😀" * 36) == SegmentInfo("UCS-2", 72, 2, 67, 61)


def test_surrogate_pair_is_not_split_across_parts():
    text = "a" * 66 + "😀" + "a" * 66
    info = count_segments(text)
    assert info.characters == 134  # a plain division would say 2 parts
    assert info.segments == 3


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Ola", "GSM-7"),
        ("Olá", "UCS-2"),
        ("Você", "UCS-2"),
        ("Atenção", "UCS-2"),
        ("São Paulo", "UCS-2"),
        ("Não", "UCS-2"),
        ("lições", "UCS-2"),
        ("ótimo", "UCS-2"),
        ("público", "UCS-2"),
        ("José", "GSM-7"),  # é is in the default alphabet
        ("Ç", "GSM-7"),  # capital C cedilla is, small ç is not
        ("ç", "UCS-2"),
        ("à vista", "GSM-7"),
        ("Müller Ñandú", "UCS-2"),  # ú is not
        ("Müller Ñandu", "GSM-7"),
        ("R$ 10,00 @ 5% #1 ¤ £ ¥ § ¡¿", "GSM-7"),
        ("ΔΦΓΛΩΠΨΣΘΞ", "GSM-7"),
        ("`", "UCS-2"),  # grave accent is not in GSM 03.38
        ("linha 1\nlinha 2\r\n", "GSM-7"),
        ("“aspas”", "UCS-2"),  # typographic quotes from word processors
    ],
)
def test_encoding_detection(text, encoding):
    assert count_segments(text).encoding == encoding


def test_typical_collection_message():
    text = (
        "Olá, Maria! Sua fatura de R$ 149,90 venceu em 10/06. "
        "Evite juros: pague pelo Pix ou boleto em https://pag.exemplo.com.br/a1b2. "
        "Dúvidas? Responda esta mensagem."
    )
    info = count_segments(text)
    assert info.encoding == "UCS-2"
    assert info.characters == len(text) == 159
    assert info.segments == 3
    assert info.per_segment == 67
    assert info.remaining == 67 * 3 - 159

    # The same message without accents fits one GSM-7 SMS.
    plain = text.replace("Olá", "Ola").replace("Dúvidas", "Duvidas")
    assert count_segments(plain) == SegmentInfo("GSM-7", 159, 1, 160, 1)


def test_gsm7_default_alphabet_has_127_characters_and_10_extensions():
    assert len(GSM7_BASIC) == 127  # 128 codes minus the escape
    assert len(GSM7_EXTENSION) == 10
    assert GSM7_BASIC.isdisjoint(GSM7_EXTENSION)


_GSM = "".join(sorted(GSM7_BASIC | GSM7_EXTENSION))


@given(st.text(alphabet=_GSM, max_size=700))
def test_gsm7_segments_hold_every_character(text):
    info = count_segments(text)
    assert info.encoding == "GSM-7"
    assert info.characters == len(text) + sum(ch in GSM7_EXTENSION for ch in text)
    if not text:
        assert info.segments == 0
    elif info.characters <= 160:
        assert (info.segments, info.remaining) == (1, 160 - info.characters)
    else:
        # Never fewer parts than a plain division, at most one wasted septet per part.
        assert -(-info.characters // 153) <= info.segments
        assert info.characters <= info.segments * 153 - info.remaining
        assert 0 <= info.remaining < 153


@given(st.text(min_size=1, max_size=300))
def test_ucs2_counts_utf16_code_units(text):
    info = count_segments(text)
    if info.encoding == "UCS-2":
        assert info.characters == len(text.encode("utf-16-le")) // 2
        single, multi = (70, 67)
        assert info.per_segment == (single if info.segments == 1 else multi)
        assert 0 <= info.remaining <= info.per_segment
