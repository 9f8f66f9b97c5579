"""Checks made once per distinct value, in Arrow, and their answers spread back over the rows.

A column of a million rows holds far fewer distinct phones, emails or ZIPs; and a Python string per row, made
to look at each value or to carry its answer, costs more than the check itself. The normalizers work on Arrow
arrays and hand only the values their vectorized tests cannot decide to a library, one by one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from importer.read.reader import TEXT_DTYPE

Normalized = tuple[pd.Series, pd.Series]  # (normalized values, mask of dropped non-empty values)


def arrow_of(values: pd.Series) -> pa.Array:
    """The values as an Arrow array: the column's own buffers when it is Arrow-backed (no Python strings)."""
    array = pa.array(values, type=pa.string(), from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def text_of(values: pa.Array, index: pd.Index | None = None) -> pd.Series:
    """Arrow strings as a text column of the reader's dtype, without Python strings in between."""
    return pd.Series(TEXT_DTYPE.__from_arrow__(values), index=index)


def non_empty(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    found: np.ndarray = pc.fill_null(pc.not_equal(values, ""), False).to_numpy(zero_copy_only=False)
    return found


def with_library(decided: pa.Array, values: pa.Array, where: np.ndarray, decide: Callable[[str], str]) -> pa.Array:
    """`decided` with the positions `where` answered by `decide` (a library's call) on those of `values`, one by
    one: the values the vectorized tests could not decide."""
    if not len(where):
        return decided
    answers = [decide(str(value)) for value in values.take(pa.array(where)).to_pylist()]
    mask = np.zeros(len(decided), dtype=bool)
    mask[where] = True
    replaced: pa.Array = pc.replace_with_mask(decided, pa.array(mask), pa.array(answers, type=pa.string()))
    return replaced


def matches(values: pa.Array, pattern: str) -> np.ndarray:
    result: np.ndarray = pc.match_substring_regex(values, pattern).to_numpy(zero_copy_only=False)
    return result


def on_uniques(values: pd.Series, normalize: Callable[[pd.Series], pd.Series]) -> Normalized:
    """Apply a normalizer to the distinct non-empty values only, and spread its answers back."""
    codes, uniques = pd.factorize(values)
    answers = arrow_of(normalize(pd.Series(uniques, dtype="str")))
    # Spread back in Arrow: a take of Python strings made an object for each of the chunk's rows.
    result = text_of(pc.fill_null(answers.take(pa.array(codes, mask=codes < 0)), ""), values.index)
    return result, (values != "") & (result == "")


def on_values(values: pd.Series, test: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """A test of each distinct value, spread back over the rows."""
    codes, uniques = pd.factorize(values)
    answers = test(pd.Series(uniques, dtype="str")).to_numpy(dtype=bool)
    return pd.Series(answers.take(codes), index=values.index, dtype=bool)


#: The characters Python's repr keeps as they are between single quotes: printable ASCII but the quote and the
#: backslash, and the printable Latin-1 and Latin Extended letters and signs (a test checks each against repr).
_REPR_KEEPS = r"^[\x20-\x26\x28-\x5b\x5d-\x7e\x{a1}-\x{ac}\x{ae}-\x{24f}]*$"


def python_repr(values: pa.Array) -> pa.Array:
    """repr() of each text, in Arrow: the text between single quotes where repr would change nothing else; the
    others (a quote, a backslash, a character repr escapes) go to repr one by one."""
    values = values.cast(pa.string())
    quoted = pc.binary_join_element_wise("'", values, "'", "")
    plain = pc.fill_null(pc.match_substring_regex(values, _REPR_KEEPS), False).to_numpy(zero_copy_only=False)
    return with_library(quoted, values, np.flatnonzero(~plain), repr)
