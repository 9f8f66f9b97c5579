"""Field normalization, vectorized: phones, emails, VINs, ZIPs, states, flags, years, mileage.

Each normalizer takes a Series of trimmed text ("" for empty) and returns the normalized Series ("" where
the value was empty or unusable) and a mask of the non-empty values it had to drop.

Phones and emails are checked with the phonenumbers and email-validator libraries, but a library call per
value is far too slow for a million-row file. So each works on unique values only, and decides the common
shapes with a vectorized test derived from the library's own data: for phones, the libphonenumber
metadata of the North American numbering plan, applied as RE2 regexes; for emails, a deliberately
narrow pattern that the library always accepts. Only values outside those shapes reach the library itself.
tests/prepare/test_normalize.py proves both fast paths agree with the library value by value.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import email_validator
import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import phonenumberutil

from importer.prepare.by_value import (
    Normalized,
    arrow_of,
    matches,
    non_empty,
    on_uniques,
    on_values,
    text_of,
    with_library,
)
from importer.prepare.mapping import base_field, vehicle_groups, vehicle_prefix
from importer.prepare.vin import NORTH_AMERICAN_PREFIX, TRANSLITERATION, VIN_PATTERN, WEIGHTS
from importer.read.formulas import is_formula

# Regexes here avoid \s and \d: pandas runs those through Python's re value by value (their Unicode
# meaning differs from RE2's), while spelled-out classes stay in pyarrow's vectorized kernels.
_WHITESPACE_RUN = "[ \t\r\n\f\v]+"




# -- phones ----------------------------------------------------------------------------------------
_NANP_LENGTH = 10
#: Digits, the usual separators and one leading '+': the only inputs the fast path may decide.
_PHONE_CHARS = r"^\+?[0-9 \t\-.()/]+$"
_PHONE_SEPARATORS = r"[ \t\-.()/]"
#: After separators go: optional country code or national prefix 1, then a 10-digit number that
#: libphonenumber's NANP general description allows ([2-9] first).
_NANP_SHAPE = r"^(?:\+1|1)?(?P<national>[2-9][0-9]{9})$"


@dataclass(frozen=True)
class _Region:
    leading_digits: str | None
    general: str | None  # None: no 10-digit number can be valid here
    types: str | None


def _admits_ten(desc: object) -> str | None:
    """The desc's pattern if a 10-digit number may match it (as _is_number_matching_desc decides)."""
    pattern = getattr(desc, "national_number_pattern", None)
    lengths = getattr(desc, "possible_length", ())
    if not pattern or (lengths and _NANP_LENGTH not in lengths):
        return None
    return str(pattern)


@functools.cache
def _nanp_regions() -> tuple[_Region, ...]:
    """libphonenumber's regions of country code 1, in the order the library tries them."""
    regions = []
    for code in phonenumberutil.COUNTRY_CODE_TO_REGION_CODE[1]:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(code)
        if meta is None:
            continue
        type_descs = (meta.premium_rate, meta.toll_free, meta.shared_cost, meta.voip, meta.personal_number,
                      meta.pager, meta.uan, meta.voicemail, meta.fixed_line, meta.mobile)
        types = [p for p in map(_admits_ten, type_descs) if p]
        regions.append(_Region(meta.leading_digits, _admits_ten(meta.general_desc),
                               "|".join(f"(?:{p})" for p in types) or None))
    return tuple(regions)


def _nanp_valid(numbers: pa.Array) -> np.ndarray:
    """is_valid_number for 10-digit national numbers of country code 1, as the library decides it.

    The library picks the first region (in its order) whose leading digits match or, for regions without
    leading digits, whose number types match; the number is valid if it matches a type of that region.
    """
    valid = np.zeros(len(numbers), dtype=bool)
    undecided = np.ones(len(numbers), dtype=bool)
    for region in _nanp_regions():
        index = np.flatnonzero(undecided)
        if not len(index):
            break
        subset = numbers.take(pa.array(index))

        def typed(region: _Region = region, subset: pa.Array = subset) -> np.ndarray:
            if region.general is None or region.types is None:
                return np.zeros(len(subset), dtype=bool)
            both: np.ndarray = matches(subset, f"^(?:{region.general})$") & matches(subset, f"^(?:{region.types})$")
            return both

        if region.leading_digits:
            chosen = matches(subset, f"^(?:{region.leading_digits})")
            valid[index[chosen]] = typed()[chosen]
        else:
            chosen = typed()
            valid[index[chosen]] = True
        undecided[index[chosen]] = False
    return valid


#: A phone a spreadsheet saved as a decimal number (`3105551234.0`): every digit is there, the `.0` is format.
_DECIMAL_PHONE = re.compile(r"^(\+?[0-9]{7,})\.0+$")
#: A number in scientific notation (`3.05E+09`), as a spreadsheet shows a long number in a narrow column
#: and saves it to CSV: only the first digits are left, so the value can never be read back.
#: (`8,2E+11` in a comma locale) The form is the spreadsheets' own, one digit before the point and a signed
#: exponent, so that a code such as `10E2345` is not taken for one.
SCIENTIFIC = r"^[0-9](?:[.,][0-9]+)?[eE][+-][0-9]{1,3}$"


def phone_by_library(value: str, region: str = "US") -> str:
    """E.164 form of a phone number, or "" when libphonenumber finds it unusable."""
    value = _DECIMAL_PHONE.sub(r"\1", value)
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_valid_number(number):
        return ""
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _phones_unique(values: pd.Series) -> pd.Series:
    arrow = arrow_of(values)
    stripped = pc.replace_substring_regex(arrow, _PHONE_SEPARATORS, "")
    national = pc.extract_regex(stripped, _NANP_SHAPE).field(0)
    fast = matches(arrow, _PHONE_CHARS) & matches(stripped, _NANP_SHAPE)
    fast_index = np.flatnonzero(fast)
    valid = np.zeros(len(values), dtype=bool)
    valid[fast_index[_nanp_valid(national.take(pa.array(fast_index)))]] = True
    out = pc.if_else(pa.array(valid), pc.binary_join_element_wise("+1", pc.fill_null(national, ""), ""), "")
    return text_of(with_library(out, arrow, np.flatnonzero(~fast & non_empty(arrow)), phone_by_library))


def normalize_phones(values: pd.Series) -> Normalized:
    """Phones in E.164 ('+13105551234'); a number the library deems invalid is dropped."""
    return on_uniques(values.str.replace(_DECIMAL_PHONE.pattern, r"\1", regex=True), _phones_unique)


# -- emails ----------------------------------------------------------------------------------------
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
#: A narrow ASCII subset of what email-validator accepts: dot-atom local part of common characters,
#: letters-only top-level domain, no '--' anywhere in the domain (so no Punycode or IDNA rules apply).
_SIMPLE_EMAIL = rf"^[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:{_LABEL}\.)+[a-z]{{2,63}}$"
_LOCAL_MAX, _EMAIL_MAX = 64, 254


def non_ascii_local(values: pd.Series) -> pd.Series:
    """True where an address is well formed but for characters the API does not accept before the @
    (`zoë.smith1@example.com`): email-validator accepts it once internationalized addresses are allowed.

    Decided like the normalizer decides: an address whose local part, its letters taken for plain ones, has
    the narrow shape the library always accepts is well formed; only the others reach the library.
    """
    def test(texts: pd.Series) -> pd.Series:
        arrow = arrow_of(texts.str.lower())
        parts = pc.extract_regex(arrow, r"^(?P<local>[^@]*)@(?P<domain>[^@]*)$")
        local, domain = pc.fill_null(parts.field("local"), ""), pc.fill_null(parts.field("domain"), "")
        accented = ~pc.string_is_ascii(local).to_numpy(zero_copy_only=False) & parts.is_valid().to_numpy(
            zero_copy_only=False)
        plain = pc.binary_join_element_wise(pc.replace_substring_regex(local, r"\p{L}", "a"), domain, "@")
        # The library counts an internationalized local part's length in bytes.
        short = ((pc.binary_length(local).to_numpy(zero_copy_only=False) <= _LOCAL_MAX)
                 & (pc.binary_length(arrow).to_numpy(zero_copy_only=False) <= _EMAIL_MAX))
        answer = accented & short & _fast_emails(plain)
        undecided = np.flatnonzero(accented & ~answer)
        strings = texts.to_numpy(dtype=object)
        answer[undecided] = [_valid_international(str(strings[i])) for i in undecided]
        return pd.Series(answer, dtype=bool)
    return on_values(values, test)


def _valid_international(value: str) -> bool:
    try:
        email_validator.validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except email_validator.EmailNotValidError:
        return False
    return True


def email_by_library(value: str) -> str:
    """The address as email-validator normalizes it (no DNS), lower-cased, in the ASCII form a strict API
    validator accepts; "" if it is refused.

    An internationalized domain goes out in its IDNA form (`bücher.de` → `xn--bcher-kva.de`), which reaches
    the same mailbox. A local part that is not ASCII (`zoë.wilson@…`, typed from the customer's name) has
    no ASCII form: most API stacks (an OpenAPI `format: email`) refuse the whole request over it, so it is
    dropped, with a warning, and the rest of the customer is saved.
    """
    try:
        result = email_validator.validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except email_validator.EmailNotValidError:
        return ""
    return str(result.ascii_email or "").lower()


def _special_use(domains: pa.Array) -> np.ndarray:
    special = "|".join(email_validator.SPECIAL_USE_DOMAIN_NAMES)
    return matches(domains, rf"(?:^|\.)(?:{special})$")


def _fast_emails(arrow: pa.Array) -> np.ndarray:
    """True where an address has the narrow shape email-validator always accepts."""
    parts = pc.extract_regex(arrow, r"^(?P<local>[^@]*)@(?P<domain>[^@]*)$")
    local_len = pc.fill_null(pc.utf8_length(parts.field("local")), _LOCAL_MAX + 1).to_numpy(zero_copy_only=False)
    domains = pc.fill_null(parts.field("domain"), "")
    fast: np.ndarray = (matches(arrow, _SIMPLE_EMAIL) & (local_len <= _LOCAL_MAX)
                        & (pc.utf8_length(arrow).to_numpy(zero_copy_only=False) <= _EMAIL_MAX)
                        & ~matches(domains, "--") & ~_special_use(domains))
    return fast


#: One @, with a Latin letter outside ASCII before it (U+00C0-U+024F: `zoë.wilson@…`). email-validator
#: refuses every such address without SMTPUTF8 (no letter of this range normalizes to ASCII), as
#: tests/prepare/test_normalize.py checks letter by letter; a migration may carry hundreds of thousands of
#: them, and the library takes about 20 µs for each.
_LATIN_LOCAL = "^[^@]*[\u00c0-\u024f][^@]*@[^@]*$"


def _emails_unique(values: pd.Series) -> pd.Series:
    arrow = arrow_of(values)
    fast = _fast_emails(arrow)
    refused = matches(arrow, _LATIN_LOCAL)
    out = pc.if_else(pa.array(fast), arrow, "")
    return text_of(with_library(out, arrow, np.flatnonzero(~fast & ~refused & non_empty(arrow)), email_by_library))


def normalize_emails(values: pd.Series) -> Normalized:
    """Emails trimmed and lower-cased; one email-validator refuses (syntax only) is dropped."""
    return on_uniques(values.str.lower(), _emails_unique)


# -- placeholder contacts ------------------------------------------------------------------------------
# What dealers type when a customer gives no email or phone. Sent, these merge strangers: the server's
# duplicate search matches on contact and name, so two "John Smith"s at noemail@noemail.com become one.
#: Email local parts that mean "no email", at any domain.
PLACEHOLDER_EMAIL_LOCALS = ("none", "noemail", "no.email", "no-email", "no_email", "nomail", "no.mail", "noreply",
                            "declined", "refused", "na", "n.a", "unknown", "notprovided", "not.provided",
                            "donotemail", "dontemail", "noname", "nobody", "customer.declined")
#: Email domains that mean "no email", whatever the local part.
PLACEHOLDER_EMAIL_DOMAINS = ("none.com", "noemail.com", "no-email.com", "nomail.com", "noemail.net",
                             "declined.com", "refused.com", "unknown.com", "donotemail.com", "noname.com",
                             "none.none", "email.none")
#: Phones made of one repeated digit (555-555-5555, 000-000-0000), or whose last seven are (310-000-0000),
#: and runs of consecutive digits (123-456-7890, 987-654-3210).
_SAME = "|".join(f"{d}{{7}}" for d in "0123456789")
_RUNS = ("1234567890", "0123456789", "2345678901", "9876543210", "0987654321", "8765432109")
_PLACEHOLDER_PHONE = rf"^(?:1?[0-9]{{3}}(?:{_SAME})|1?(?:{'|'.join(d * 3 for d in '0123456789')})(?:{_SAME})" \
                     rf"|1?(?:{'|'.join(_RUNS)})|1?[0-9]{{3}}(?:1234567|7654321))$"


def placeholder_emails(values: pd.Series) -> pd.Series:
    """True where an email (normalized, lower case) is a known "no email" placeholder."""
    locals_ = "|".join(p.replace(".", r"\.") for p in PLACEHOLDER_EMAIL_LOCALS)
    domains = "|".join(p.replace(".", r"\.") for p in PLACEHOLDER_EMAIL_DOMAINS)
    return values.str.contains(rf"^(?:{locals_})@|@(?:{domains})$", regex=True).fillna(False).astype(bool)


def placeholder_phones(values: pd.Series) -> pd.Series:
    """True where a phone, as typed, is a repeated-digit or sequential "no phone" placeholder."""
    digits = values.str.replace("[^0-9]", "", regex=True)
    return (values != "") & digits.str.contains(_PLACEHOLDER_PHONE, regex=True).fillna(False).astype(bool)


# -- VINs -------------------------------------------------------------------------------------------
_VIN_VALUES = np.zeros(256, dtype=np.int64)
for _char, _value in TRANSLITERATION.items():
    _VIN_VALUES[ord(_char)] = _value


def valid_vin_mask(vins: pd.Series) -> np.ndarray:
    """is_valid_vin for every value, computed on arrays (the check digit as one matrix product)."""
    arrow = arrow_of(vins)
    shaped = matches(arrow, f"^{VIN_PATTERN}$")
    valid = shaped.copy()
    index = np.flatnonzero(shaped)
    if len(index):
        chars = np.asarray(vins.to_numpy(dtype=object)[index], dtype="S17").view(np.uint8).reshape(-1, 17)
        remainder = _VIN_VALUES[chars] @ np.asarray(WEIGHTS) % 11
        expected = np.where(remainder == 10, ord("X"), remainder + ord("0"))
        north_american = np.isin(chars[:, 0], np.frombuffer(NORTH_AMERICAN_PREFIX.encode(), dtype=np.uint8))
        valid[index] = ~north_american | (chars[:, 8] == expected)
    return valid


def normalize_vins(values: pd.Series) -> Normalized:
    """VINs upper-cased; one with a wrong length, a letter I/O/Q or a wrong check digit is dropped."""
    upper = values.str.upper().str.replace(r"[ \t-]", "", regex=True)
    result = upper.where(valid_vin_mask(upper), "")
    return result, (values != "") & (result == "")


# -- addresses --------------------------------------------------------------------------------------
def normalize_zips(values: pd.Series) -> Normalized:
    """US ZIPs keep (or get back) their leading zeros, ZIP+4 as 12345-6789; Canadian codes as 'A1A 1A1'. Once
    per distinct value, as the states and the years (a file of a million rows has a few thousand ZIPs, a few
    dozen states and years: 0.8 s of a million rows' checks)."""
    return on_uniques(values, _zips)


def _zips(values: pd.Series) -> pd.Series:
    upper = values.str.upper().str.strip()
    digits = upper.str.replace("-", "", regex=False).str.replace(" ", "", regex=False)
    us_short = digits.str.fullmatch("[0-9]{3,5}")
    us_plus4 = digits.str.fullmatch("[0-9]{8,9}")
    canadian = upper.str.fullmatch("[A-Z][0-9][A-Z] ?[0-9][A-Z][0-9]")
    result = pd.Series("", index=values.index, dtype="str")
    result = result.mask(us_short, digits.str.zfill(5))
    plus4 = digits.str.zfill(9)
    result = result.mask(us_plus4, plus4.str.slice(0, 5) + "-" + plus4.str.slice(5))
    return result.mask(canadian, digits.str.slice(0, 3) + " " + digits.str.slice(3))  # no '-' in these


US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts",
    "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico",
    "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming", "PR": "Puerto Rico", "VI": "Virgin Islands",
    "GU": "Guam", "AS": "American Samoa", "MP": "Northern Mariana Islands", "AA": "Armed Forces Americas",
    "AE": "Armed Forces Europe", "AP": "Armed Forces Pacific",
    "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba", "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador", "NS": "Nova Scotia", "NT": "Northwest Territories", "NU": "Nunavut",
    "ON": "Ontario", "PE": "Prince Edward Island", "QC": "Quebec", "SK": "Saskatchewan", "YT": "Yukon",
}
_STATE_CODES = {**{code.lower(): code for code in US_STATES},
                **{name.lower(): code for code, name in US_STATES.items()}}


def normalize_states(values: pd.Series) -> Normalized:
    """2-letter state or province codes; full names ('California') become their code."""
    return on_uniques(values, _states)


def _states(values: pd.Series) -> pd.Series:
    squeezed = values.str.replace(r"[ \t.]+", " ", regex=True).str.strip().str.lower()
    return squeezed.map(_STATE_CODES).fillna("").astype("str")


# -- flags and numbers -------------------------------------------------------------------------------
_TRUE, _FALSE = ("y", "yes", "true", "t", "1"), ("n", "no", "false", "f", "0")


def parse_flags(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Y/N, yes/no, true/false, 1/0 → a boolean Series (NA where empty or unreadable), and bad values."""
    folded = values.str.lower()
    result = pd.Series(pd.NA, index=values.index, dtype="boolean")
    result = result.mask(folded.isin(_TRUE), True).mask(folded.isin(_FALSE), False)
    return result, (values != "") & result.isna()


def two_digit_century(today: datetime.date | None = None) -> int:
    """The last two-digit year read as 20YY: next year's two digits (a model year runs a year ahead).
    From today's date, so the rule holds whatever the year: in 2026, 27 is 2027 and 28 is 1928."""
    return ((today or datetime.date.today()).year + 1) % 100


def normalize_years(values: pd.Series) -> Normalized:
    """Model years 1900 to next year + 1 as 4 digits; a two-digit `YY` is 20YY up to next year's two
    digits, 19YY above (`13` → 2013, `98` → 1998)."""
    return on_uniques(values, _years)


def _years(values: pd.Series) -> pd.Series:
    ceiling = datetime.date.today().year + 2
    two = values.str.fullmatch("[0-9]{2}").fillna(False).astype(bool)
    if two.any():
        short = pd.to_numeric(values.where(two, None), errors="coerce")
        century = np.where(short <= two_digit_century(), "20", "19")
        values = values.mask(two, pd.Series(century, index=values.index, dtype="str") + values)
    number = pd.to_numeric(values.where(values.str.fullmatch("[0-9]{4}"), None), errors="coerce")
    return values.where((number >= 1900) & (number <= ceiling), "").astype("str")


def normalize_mileage(values: pd.Series) -> Normalized:
    """Whole miles as digits; thousands separators and a decimal part go."""
    cleaned = values.str.replace(",", "", regex=False).str.replace(r"\.[0-9]*$", "", regex=True)
    result = cleaned.where(cleaned.str.fullmatch("[0-9]{1,7}"), "").str.lstrip("0").astype("str")
    result = result.mask((result == "") & cleaned.str.fullmatch(r"0+"), "0")
    return result, (values != "") & (result == "")


def text_column(frame: pd.DataFrame, column: str) -> pd.Series:
    """A canonical text column, or empty text on every row where the mapping maps nothing to it."""
    if column in frame:
        return frame[column]
    return pd.Series("", index=frame.index, dtype="str")


def squeeze_spaces(values: pd.Series) -> pd.Series:
    """Names and free text: inner runs of white space become one space."""
    return values.str.replace(_WHITESPACE_RUN, " ", regex=True).str.strip()


# -- a whole canonical chunk -------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldProblem:
    """Values of one canonical column that normalization had to drop."""

    field: str
    message: str
    #: True on the rows whose value was dropped
    mask: pd.Series
    #: the values as they were read
    values: pd.Series
    #: a part of a column holding several fields that could not be read: fixing the cell completes the row
    completable: bool = False


_FIELD_RULES: dict[str, tuple[Callable[[pd.Series], Normalized], str]] = {
    "vin": (normalize_vins, "not a valid VIN; vehicle not sent"),
    "address.zip": (normalize_zips, "not a US ZIP or Canadian postal code"),
    "address.state": (normalize_states, "not a US state or Canadian province"),
    "vehicleYear": (normalize_years, "not a model year"),
    "estimatedMileage": (normalize_mileage, "not a mileage"),
}
_NAME_FIELDS = ("firstName", "middleName", "lastName", "company")
_VEHICLE_COLUMNS = ("vin", "vehicleYear", "vehicleMake", "vehicleModel", "vehicleTrim", "estimatedMileage",
                    "licensePlate", "color", "vehicleKey", "vehicleEngine")


def _rule_for(column: str) -> tuple[Callable[[pd.Series], Normalized], str] | None:
    column = base_field(column)  # a second vehicle's `vehicle2.vin` is checked as any `vin`
    if column.startswith("phone") and "." not in column:
        return normalize_phones, "not a valid phone number"
    if column.startswith("email") and "." not in column:
        return normalize_emails, "not a valid email address"
    if column.endswith((".block", ".consent")) or column == "isBusiness":
        return parse_flags, "not a yes/no flag"
    return _FIELD_RULES.get(column)


PLACEHOLDER_MESSAGE = "a placeholder, not the customer's own; treated as empty"
#: A name or address a spreadsheet would run as a formula (`=HYPERLINK(...)`, `+1+cmd|...`, `-2+3`; the rule
#: is read/formulas.py's): never a real one, and a trap for whoever opens the dealer's CRM export.
FORMULA_MESSAGE = "would run as a spreadsheet formula; not sent"
_FORMULA_FIELDS = ("firstName", "middleName", "lastName", "company", "address.line1", "address.line2",
                   "address.city")


def _placeholder(column: str, values: pd.Series, result: pd.Series) -> pd.Series | None:
    """The placeholder contacts of a phone or email column (None for other columns): tested on the values
    normalization kept, and on the few it refused (so `555-555-5555` is named a placeholder, not invalid)."""
    if "." in column or not column.startswith(("phone", "email")):
        return None
    test = placeholder_phones if column.startswith("phone") else placeholder_emails
    # Normalized phones are all "+1" and ten digits: the pattern runs on them as they are, in pyarrow.
    found = (pd.Series(matches(arrow_of(result), _PLACEHOLDER_PHONE.replace("^", r"^\+", 1)), index=result.index)
             if column.startswith("phone") else on_values(result, test))
    refused = (result == "") & (values != "")
    if refused.any():
        typed = values[refused] if column.startswith("phone") else values[refused].str.lower()
        found[refused] = test(typed).to_numpy(dtype=bool)
    return found


PHONE_SCIENTIFIC_MESSAGE = "written in scientific notation by a spreadsheet, its digits lost"
EMAIL_NON_ASCII_MESSAGE = "characters the API does not accept before the @"


def _reasons(column: str, values: pd.Series, dropped: pd.Series) -> list[tuple[pd.Series, str]]:
    """Dropped values whose value shows a more precise reason than the column's message, with that reason:
    the person fixing the row is told the fix that works (a phone a spreadsheet rewrote needs its digits
    typed again; an accented address needs another address, not a typo hunt)."""
    column = base_field(column)
    if "." in column:
        return []
    found = pd.Series(False, index=values.index)
    if column.startswith("phone"):
        found[dropped] = values[dropped].str.fullmatch(SCIENTIFIC).fillna(False).to_numpy(dtype=bool)
        return [(found, PHONE_SCIENTIFIC_MESSAGE)] if found.any() else []
    if column.startswith("email"):
        found[dropped] = non_ascii_local(values[dropped]).to_numpy(dtype=bool)
        return [(found, EMAIL_NON_ASCII_MESSAGE)] if found.any() else []
    return []


def normalize_frame(canonical: pd.DataFrame, locale_default: str = "") -> tuple[pd.DataFrame, list[FieldProblem]]:
    """Every canonical column normalized; consent columns become `<slot>.ok` booleans.

    A business is who the `isBusiness` column says, or, where nothing maps it, a row with a company and
    no last name.
    """
    out: dict[str, pd.Series] = {}
    problems: list[FieldProblem] = []
    for column, values in canonical.items():
        name = str(column)
        rule = _rule_for(name)
        if rule is None:
            text = squeeze_spaces(values) if name in _NAME_FIELDS else values
            if name in _FORMULA_FIELDS:
                formula = is_formula(text)
                if formula.any():
                    problems.append(FieldProblem(name, FORMULA_MESSAGE, formula, values))
                    text = text.mask(formula, "")
            out[name] = text
            continue
        normalizer, message = rule
        result, dropped = normalizer(values)
        placeholder = _placeholder(name, values, result)
        if placeholder is not None:
            dropped &= ~placeholder  # said once, as a placeholder
            result = result.mask(placeholder, "")
            if placeholder.any():
                problems.append(FieldProblem(name, PLACEHOLDER_MESSAGE, placeholder, values))
        if dropped.any():
            for reason, why in _reasons(name, values, dropped):
                dropped &= ~reason  # said once, with its own reason
                problems.append(FieldProblem(name, why, reason, values))
        if dropped.any():
            problems.append(FieldProblem(name, message, dropped, values))
        if name.endswith(".block"):
            # "Not opted out" is not consent (texting consent least of all): an opt-out column can only
            # withhold it. Where it does not, the flags are left out and the API's default applies.
            out[name.removesuffix(".block") + ".ok"] = pd.Series(pd.NA, index=result.index,
                                                                 dtype="boolean").mask(result.fillna(False), False)
        elif name.endswith(".consent"):
            out[name.removesuffix(".consent") + ".ok"] = result
        else:
            out[name] = result
    frame = pd.DataFrame(out, index=canonical.index)
    if "isBusiness" not in frame:
        frame["isBusiness"] = (text_column(frame, "company") != "") & (text_column(frame, "lastName") == "")
    frame["isBusiness"] = frame["isBusiness"].fillna(False).astype(bool)
    if locale_default:
        locale = text_column(frame, "preferredLocale")
        frame["preferredLocale"] = locale.where(locale != "", locale_default)
    for group in vehicle_groups(canonical.columns):
        frame[vehicle_send_column(group)] = _vehicle_to_send(canonical, frame, problems, vehicle_prefix(group))
    return frame, problems


def vehicle_send_column(group: int) -> str:
    """The column saying whether a row's vehicle `group` is sent: `vehicle.send`, `vehicle2.send`, ..."""
    return vehicle_prefix(group) + "send" if group > 1 else "vehicle.send"


def _vehicle_to_send(canonical: pd.DataFrame, frame: pd.DataFrame, problems: list[FieldProblem],
                     prefix: str = "") -> pd.Series:
    """Whether each row's vehicle is sent: it needs a valid VIN, or no VIN and a year, make and model."""
    vin = prefix + "vin"
    given_vin = text_column(canonical, vin) != ""
    complete = ((text_column(frame, prefix + "vehicleYear") != "") & (text_column(frame, prefix + "vehicleMake") != "")
                & (text_column(frame, prefix + "vehicleModel") != ""))
    mentioned = pd.Series(False, index=frame.index)
    for column in _VEHICLE_COLUMNS:
        if prefix + column in canonical:
            mentioned |= canonical[prefix + column] != ""
    incomplete = mentioned & ~given_vin & ~complete
    if incomplete.any():
        problems.append(FieldProblem(vin, "no VIN, nor a year, make and model; vehicle not sent", incomplete,
                                     text_column(canonical, vin)))
    return (text_column(frame, vin) != "") | (~given_vin & complete)
