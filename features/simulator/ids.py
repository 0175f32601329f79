"""Pseudonymous identifiers: a bijective scramble of running counters, so ids look random,
never collide, and stay the same for the same row in every delivery of one simulation."""

from __future__ import annotations

import numpy as np
import polars as pl

SPACE = 10**11
# Counter layout: rows of persons-chunk `c` use c * CHUNK_SPACE + i (so a chunk's ids do not
# depend on how many rows other chunks have), erroneous double entries DOUBLE_ENTRY + the
# genuine row's counter, rows fabricated by the corrupter FABRICATED + a running count.
CHUNK_SPACE = 10**8
MAX_CHUNKS = 400
DOUBLE_ENTRY = 4 * 10**10
FABRICATED = 9 * 10**10
_MULTIPLIER = {
    "P": 48_271_836_913,
    "CR": 31_415_926_537,
    "CS": 27_182_818_283,
    "AD": 16_180_339_887,
    "OB": 14_142_135_623,
    "AP": 17_320_508_077,
    "IN": 22_360_679_777,
}
_OFFSET = {"P": 12_345_678_901, "CR": 271, "CS": 828, "AD": 4_593, "OB": 5_771, "AP": 69, "IN": 7}


def make_ids(prefix: str, counters: np.ndarray) -> pl.Series:
    """Ids like ``P04827193650`` for counters (int64, < SPACE); bijective per prefix."""
    a = _MULTIPLIER[prefix]  # odd and not a multiple of 5: invertible modulo 10**11
    c = counters.astype(np.int64)
    # (a * c) mod SPACE without overflow: split c into high and low parts.
    hi, lo = np.divmod(c, 10**6)
    scrambled = ((a * hi % SPACE) * 10**6 % SPACE + a * lo + _OFFSET[prefix]) % SPACE
    digits = pl.Series(scrambled).cast(pl.String).str.zfill(11)
    return pl.select(pl.concat_str(pl.lit(prefix), digits).alias(prefix)).to_series()
