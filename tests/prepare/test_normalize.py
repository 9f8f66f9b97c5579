"""Normalizers: plain tables, and the vectorized fast paths proven equal to the libraries value by value."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importer.error_codes import WARNINGS
from importer.prepare.normalize import (
    EMAIL_NON_ASCII_MESSAGE,
    PHONE_SCIENTIFIC_MESSAGE,
    email_by_library,
    non_ascii_local,
    normalize_emails,
    normalize_frame,
    normalize_mileage,
    normalize_phones,
    normalize_states,
    normalize_vins,
    normalize_years,
    normalize_zips,
    parse_flags,
    phone_by_library,
    valid_vin_mask,
)
from importer.prepare.vin import check_digit, is_valid_vin


def series(*values: str) -> pd.Series:
    return pd.Series(list(values), dtype="str")


def table(normalizer, cases: dict[str, str]) -> None:
    result, dropped = normalizer(series(*cases))
    assert list(result) == list(cases.values())
    assert list(dropped) == [bool(k) and not v for k, v in cases.items()]


def test_phones_table():
    table(normalize_phones, {
        "(310) 555-1234": "+13105551234", "1-310-555-1234": "+13105551234", "+1 310.555.1234": "+13105551234",
        "3105551234": "+13105551234", "555-1234": "", "+44 20 7946 0958": "+442079460958", "": "",
        "not a phone": "", "(000) 000-0000": "", "416 555 0199": "+14165550199",
    })


# Shapes the fast path decides: 10 digits, with or without 1/+1, with separators.
_digits = st.text(alphabet="0123456789", min_size=10, max_size=10)
_prefix = st.sampled_from(["", "1", "+1", "1-", "+1 ", "+"])
_sep = st.sampled_from(["", "-", " ", ".", "/"])


@st.composite
def phone_texts(draw):
    digits = draw(_digits)
    sep = draw(_sep)
    body = draw(st.sampled_from([
        digits, f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", sep.join((digits[:3], digits[3:6], digits[6:])),
    ]))
    return draw(_prefix) + body


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(phone_texts(), min_size=1, max_size=30))
def test_phone_fast_path_equals_library(values):
    result, _ = normalize_phones(series(*values))
    assert list(result) == [phone_by_library(v) for v in values]


@settings(max_examples=300)
@given(st.lists(st.text(alphabet="0123456789+-() x.#*", max_size=16), min_size=1, max_size=10))
def test_phone_any_text_equals_library(values):
    values = [v.strip() for v in values]
    result, _ = normalize_phones(series(*values))
    assert list(result) == [phone_by_library(v) if v else "" for v in values]


def test_emails_table():
    table(normalize_emails, {
        "John.Doe@Example.COM": "john.doe@example.com", "bad@": "", "x@localhost": "", "a@b.test": "",
        "o'brien@example.com": "o'brien@example.com", "two@@example.com": "", "": "",
        "a b@example.com": "",
        # What a strict (ASCII) validator accepts: IDNA domains in their ASCII form, no non-ASCII local part.
        "ann@bücher.de": "ann@xn--bcher-kva.de", "Ann@BÜCHER.de": "ann@xn--bcher-kva.de",
        "zoë.wilson6@example.com": "", "josé@exämple.com": "", "ann@xn--bcher-kva.de": "ann@xn--bcher-kva.de",
    })


_local = st.text(alphabet="abcxyz019_+-.'%", min_size=1, max_size=12)
_label = st.text(alphabet="abz09-", min_size=1, max_size=8)
_tld = st.sampled_from(["com", "net", "io", "c", "x1", "test", "local", "onion", "a" * 70, "arpa", "co"])


@settings(max_examples=1000)
@given(st.lists(st.builds(lambda lo, labels, tld: f"{lo}@{'.'.join([*labels, tld])}",
                          _local, st.lists(_label, max_size=3), _tld), min_size=1, max_size=20))
def test_email_fast_path_equals_library(values):
    result, _ = normalize_emails(series(*values))
    assert list(result) == [email_by_library(v) for v in values]


_latin = st.sampled_from([chr(c) for c in range(0xC0, 0x250)])


@settings(max_examples=500)
@given(st.lists(st.builds(lambda a, letter, b, domain: f"{a}{letter}{b}@{domain}",
                          st.text(alphabet="ab.\"+ é@", max_size=4), _latin, st.text(alphabet="ab.\"+ ü", max_size=4),
                          st.sampled_from(["example.com", "bücher.de", "[1.2.3.4]", "a", "x@y.com"])),
                min_size=1, max_size=20))
def test_email_fast_refusal_of_latin_letters_before_the_at_equals_library(values):
    result, _ = normalize_emails(series(*values))
    # Lower-cased as the normalizer does it (Arrow's mapping: `İ` is `i`, where Python's str.lower adds a dot)
    assert list(result) == [email_by_library(v) for v in series(*values).str.lower()]


def test_no_latin_letter_outside_ascii_makes_an_address_the_library_accepts():
    """The fast refusal's premise, letter by letter, in every position the pattern allows."""
    for letter in map(chr, range(0xC0, 0x250)):
        for address in (f"zo{letter}.w@example.com", f"{letter}@bücher.de", f'"{letter}x"@example.com',
                        f"a{letter}@[1.2.3.4]", f"{letter}{letter.upper()}@a.io"):
            assert email_by_library(address.lower()) == "", address


def test_vins_table():
    good = "1HGCM82633A004352"
    table(normalize_vins, {
        good.lower(): good, "1HGCM82633A004353": "", "WDB1234567890123X": "WDB1234567890123X",
        "1HGCM82633A00435": "", "1HGCM82633A0O4352": "", "": "", "1HG-CM826-33A004352": good,
    })


@settings(max_examples=500)
@given(st.lists(st.text(alphabet="0123456789ABCDEFGHJKLMNPRSTUVWXYZIOQ", min_size=16, max_size=18),
                min_size=1, max_size=30))
def test_vectorized_vin_check_equals_scalar(vins):
    assert list(valid_vin_mask(series(*vins))) == [is_valid_vin(v) for v in vins]


@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPRSTUVWXYZ", min_size=17, max_size=17)
       .filter(lambda v: v[0] in "12345"))
def test_corrected_check_digit_makes_a_valid_vin(vin):
    fixed = vin[:8] + check_digit(vin) + vin[9:]
    assert is_valid_vin(fixed)
    assert list(valid_vin_mask(series(fixed))) == [True]


def test_zips_table():
    table(normalize_zips, {
        "2134": "02134", "02134": "02134", "021341234": "02134-1234", "02134-1234": "02134-1234",
        "k1a0b1": "K1A 0B1", "K1A 0B1": "K1A 0B1", "123": "00123", "abc": "", "": "", "1234567": "",
    })


def test_states_table():
    table(normalize_states, {"ca": "CA", "California": "CA", "new  york": "NY", "Ont.": "", "ON": "ON",
                             "XX": "", "": ""})


def test_flags():
    result, bad = parse_flags(series("Y", "n", "TRUE", "0", "yes", "maybe", ""))
    assert list(result.astype(object).where(result.notna(), None)) == [True, False, True, False, True, None, None]
    assert list(bad) == [False] * 5 + [True, False]


@pytest.mark.parametrize(("normalizer", "cases"), [
    (normalize_years, {"2019": "2019", "13": "2013", "98": "1998", "00": "2000", "3000": "", "1899": "", "1": "",
                       "123": "", "": ""}),
    (normalize_mileage, {"12,345": "12345", "100.5": "100", "abc": "", "0": "0", "007": "7", "": ""}),
])
def test_numbers(normalizer, cases):
    table(normalizer, cases)


def test_a_phone_a_spreadsheet_saved_as_a_number():
    table(normalize_phones, {"3105551234.0": "+13105551234", "13105551234.00": "+13105551234", "3.05E+09": "",
                             "3,05E+09": "", "310555123.0": ""})


def _problems(column: str, *values: str) -> dict[str, list[bool]]:
    _, problems = normalize_frame(pd.DataFrame({column: series(*values)}))
    return {p.message: list(p.mask) for p in problems}


def test_a_dropped_value_says_why_it_was_dropped():
    # scientific notation keeps only the first digits: refused with its reason, never guessed
    assert _problems("phone1", "3.05E+09", "12", "3105551234") == {
        PHONE_SCIENTIFIC_MESSAGE: [True, False, False], "not a valid phone number": [False, True, False]}
    # a well-formed address with characters before the @ the API refuses is not "not a valid email address"
    assert _problems("email1", "zoë.smith1@example.com", "JOSÉ@example.com", "zoë smith@example.com", "a@b",
                     "ann@bücher.de") == {
        EMAIL_NON_ASCII_MESSAGE: [True, True, False, False, False],
        "not a valid email address": [False, False, True, True, False]}


def test_every_message_a_normalizer_writes_has_plain_words():
    for message in (PHONE_SCIENTIFIC_MESSAGE, EMAIL_NON_ASCII_MESSAGE):
        assert message in WARNINGS


_accented_local = st.text(alphabet="abzëéñøÅß0_+-.'%Ω\u0301\u200b", min_size=1, max_size=70)


@settings(max_examples=500)
@given(st.lists(st.builds(lambda lo, labels, tld: f"{lo}@{'.'.join([*labels, tld])}",
                          _accented_local, st.lists(_label, max_size=3), _tld), min_size=1, max_size=20))
def test_the_reason_for_an_accented_address_is_the_librarys(values):
    import email_validator

    def library(value: str) -> bool:
        try:
            email_validator.validate_email(value, check_deliverability=False, allow_smtputf8=True)
        except email_validator.EmailNotValidError:
            return False
        return not value.split("@", 1)[0].isascii()

    assert list(non_ascii_local(series(*values))) == [library(v.lower()) for v in values]


def test_two_digit_years_turn_at_next_years_two_digits(monkeypatch):
    """20YY up to next year's two digits, 19YY above: a rule on today's date, not a constant."""
    import datetime

    this_year = datetime.date.today().year
    nxt, after = f"{(this_year + 1) % 100:02d}", f"{(this_year + 2) % 100:02d}"
    table(normalize_years, {nxt: f"20{nxt}", after: f"19{after}"})

    class In2049(datetime.date):
        @classmethod
        def today(cls) -> In2049:
            return cls(2049, 6, 1)

    monkeypatch.setattr(datetime, "date", In2049)  # the module normalize reads today's date from
    table(normalize_years, {"50": "2050", "51": "1951", "13": "2013"})
