"""pandera schemas over the canonical columns: the formats normalization promises, and the row rules.

Format checks guard the normalizers: a value that breaks them is a bug, and the row is refused rather
than sent. Row rules are PRODUCT.md's: a person needs a last name, a business needs a company.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from importer.prepare.normalize import text_column
from importer.prepare.vin import VIN_PATTERN

# Value patterns spell out [0-9] rather than \d so pandas keeps them in pyarrow (see normalize.py).
#: (error code, message) for each row rule, by the name of its pandera check.
ROW_RULES = {
    "MISSING_LAST_NAME": "a person needs a last name",
    "MISSING_COMPANY": "a business needs a company name",
    # A normalized value that breaks its own format is a defect in mk-import: refuse the row, never send it.
    "INTERNAL_FORMAT": "a normalized value broke its format (a defect in mk-import: please report it)",
}
_FORMATS = {
    r"^phone\d+$": r"(\+[1-9][0-9]{6,14})?",
    r"^email\d+$": r"([^@ \t\r\n]+@[^@ \t\r\n]+)?",
    "vin": f"({VIN_PATTERN})?",
    "address.zip": r"([0-9]{5}(-[0-9]{4})?|[A-Z][0-9][A-Z] [0-9][A-Z][0-9])?",
    "address.state": r"([A-Z]{2})?",
    "vehicleYear": r"([0-9]{4})?",
    "estimatedMileage": r"([0-9]+)?",
    # the second and later vehicles of a row (`vehicles:`)
    r"^vehicle[0-9]+\.vin$": f"({VIN_PATTERN})?",
    r"^vehicle[0-9]+\.vehicleYear$": r"([0-9]{4})?",
    r"^vehicle[0-9]+\.estimatedMileage$": r"([0-9]+)?",
}


def _person_has_last_name(frame: pd.DataFrame) -> pd.Series:
    return frame["isBusiness"] | (text_column(frame, "lastName") != "")


def _business_has_company(frame: pd.DataFrame) -> pd.Series:
    return ~frame["isBusiness"] | (text_column(frame, "company") != "")


def _format_schema() -> pa.DataFrameSchema:
    columns = {pattern: pa.Column(checks=pa.Check.str_matches(f"(?:{regex})$"), regex=pattern.startswith("^"),
                                  required=False, nullable=False)
               for pattern, regex in _FORMATS.items()}
    columns["isBusiness"] = pa.Column(bool, nullable=False)
    return pa.DataFrameSchema(columns)


def _row_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(checks=[
        pa.Check(_person_has_last_name, error=ROW_RULES["MISSING_LAST_NAME"]),
        pa.Check(_business_has_company, error=ROW_RULES["MISSING_COMPANY"]),
    ])


FORMAT_SCHEMA = _format_schema()
#: Validated on the three columns it reads, so a failing row yields three failure cases, not one a column.
ROW_SCHEMA = _row_schema()
_CODE_OF = {message: code for code, message in ROW_RULES.items()}


def _failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame | None:
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases: pd.DataFrame = exc.failure_cases
        return cases
    return None


def row_errors(frame: pd.DataFrame) -> pd.Series:
    """The error code of each row ("" for a valid row), from validating the frame with the schemas."""
    codes = pd.Series("", index=frame.index, dtype="str")
    narrow = pd.DataFrame({"lastName": text_column(frame, "lastName"), "company": text_column(frame, "company"),
                           "isBusiness": frame["isBusiness"]})
    for schema, subject in ((ROW_SCHEMA, narrow), (FORMAT_SCHEMA, frame)):
        cases = _failures(schema, subject)
        if cases is None:
            continue
        for check, group in cases.groupby("check", sort=False):
            rows = pd.Index(group["index"].dropna().astype(int).unique())
            rows = rows[(codes.loc[rows] == "").to_numpy()]
            codes.loc[rows] = _CODE_OF.get(str(check), "INTERNAL_FORMAT")
    return codes
