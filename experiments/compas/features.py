"""The Broward County (COMPAS) table: ProPublica's filter and features known at screening.

Leakage rules (the target is ``two_year_recid``, observed over the two years after screening):

- never inputs: outcome columns (``is_recid``, ``r_*``, ``violent_recid``, ``is_violent_recid``,
  ``vr_*``, ``two_year_recid``, ``start``, ``end``, ``event``), COMPAS's own outputs
  (``decile_score``, ``score_text``, ``v_*``, ``type_of_assessment``), custody records
  (``in_custody``, ``out_custody``: they run past screening), identifiers and race (protected);
- the published ``age`` (and ``age_cat``) column is **not** age at screening: it is off
  by 0.4 to 3.3 years from ``compas_screening_date - dob``, and the offset predicts the
  outcome (AUC 0.63 on its own; people whose ``age`` is about one year above their age at
  screening re-offend at 76%, the others at 38-39%), so it carries post-screening information.
  We use age at screening computed from ``dob``; the published column is only used to
  reproduce the literature's reference models;
- jail time is counted up to the end of the screening day only (``c_jail_out`` may lie after
  screening); "still in jail at the end of the screening day" is known then.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "compas-scores-two-years.csv"
TARGET = "two_year_recid"
PROTECTED = "race"
FILTERED_ROWS = 6172

#: Column names (or prefixes ending in "_") that must never be model inputs.
FORBIDDEN = (
    "is_recid",
    "r_",
    "violent_recid",
    "is_violent_recid",
    "vr_",
    "two_year_recid",
    "start",
    "end",
    "event",
    "decile_score",
    "score_text",
    "v_",
    "type_of_assessment",
    "in_custody",
    "out_custody",
    "race",
    "age_cat",
    "id",
)

#: Keyword groups of the charge description (lower case regular expressions).
CHARGE_KEYWORDS = {
    "theft": r"theft|larceny|shoplift",
    "petit": r"petit",
    "battery": r"battery|batt\b",
    "cocaine": r"cocaine",
    "cannabis": r"cannabis|marijuana",
    "drug": r"possess|poss |deliver|traffick|controlled|cocaine|cannabis|heroin|meth|drug",
    "possession": r"poss",
    "license": r"license|lic |dl |susp",
    "dui": r"dui|under the influence|driving under",
    "burglary": r"burglary|burgl",
    "assault": r"assault",
    "weapon": r"weapon|firearm|deadly|gun",
    "domestic": r"dom|domestic",
    "no_charge": r"arrest case no charge",
    "resist": r"resist|obstruct",
    "fraud": r"fraud|forg|uttering|counterfeit",
    "trespass": r"trespass",
    "robbery": r"robbery",
    "violation": r"viol|probation",
}

#: Direction of risk, for monotone constraints and the points scale.
MONOTONE = {
    "priors_count": 1,
    "juv_fel_count": 1,
    "juv_misd_count": 1,
    "juv_other_count": 1,
    "juv_total": 1,
    "age_at_screening": -1,
}


def is_forbidden(column: str) -> bool:
    """True for outcome, score, custody, identifier and protected columns (module doc)."""
    return any(
        column == name or (name.endswith("_") and column.startswith(name)) for name in FORBIDDEN
    )


def load_raw(path: Path = DATA) -> pl.DataFrame:
    """The published file; its two duplicated columns are checked identical and kept once."""
    raw = pl.read_csv(path, infer_schema_length=None)
    copies = [c for c in raw.columns if "_duplicated_" in c]
    for copy in copies:
        original = copy.split("_duplicated_")[0]
        if not raw[original].equals(raw[copy], check_names=False):
            raise ValueError(f"{original}: the duplicated columns differ")
    return raw.drop(copies)


def propublica_filter(raw: pl.DataFrame) -> pl.DataFrame:
    """ProPublica's standard filter: charge within 30 days, known outcome, no ordinary traffic
    offence, a COMPAS score present."""
    return raw.filter(
        (pl.col("days_b_screening_arrest").abs() <= 30)
        & (pl.col("is_recid") != -1)
        & (pl.col("c_charge_degree") != "O")
        & (pl.col("score_text") != "N/A")
    )


def screening_features(filtered: pl.DataFrame) -> pl.DataFrame:
    """Inputs known at screening, plus ``race`` (protected) and the target (module doc)."""
    screening = pl.col("compas_screening_date").str.to_date("%Y-%m-%d")
    end_of_day = screening.cast(pl.Datetime("us")) + pl.duration(days=1)
    jail_in = pl.col("c_jail_in").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
    jail_out = pl.col("c_jail_out").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
    desc = pl.col("c_charge_desc").fill_null("").str.to_lowercase()
    age = (screening - pl.col("dob").str.to_date("%Y-%m-%d")).dt.total_days() / 365.25
    juv = ("juv_fel_count", "juv_misd_count", "juv_other_count")
    # clip: the jail stay may end after screening, only the part up to then is known
    held = (pl.min_horizontal(jail_out, end_of_day) - jail_in).dt.total_hours() / 24.0
    frame = filtered.select(
        age.round(2).alias("age_at_screening"),
        pl.col("sex"),
        *juv,
        pl.sum_horizontal(*juv).alias("juv_total"),
        pl.col("priors_count"),
        (pl.col("priors_count") / (age - 17).clip(1, None)).round(4).alias("priors_per_adult_year"),
        pl.col("c_charge_degree"),
        pl.col("days_b_screening_arrest"),
        pl.col("c_days_from_compas"),
        pl.col("c_offense_date").is_null().cast(pl.Int8).alias("no_offense_date"),
        held.clip(0, None).round(2).alias("jail_days_to_screening"),
        (jail_out > end_of_day).cast(pl.Int8).alias("in_jail_end_of_screening_day"),
        *(
            desc.str.contains(rx).cast(pl.Int8).alias(f"charge_{k}")
            for k, rx in CHARGE_KEYWORDS.items()
        ),
        pl.col(PROTECTED),
        pl.col(TARGET),
    )
    leaked = [c for c in frame.columns if is_forbidden(c) and c not in (PROTECTED, TARGET)]
    if leaked:
        raise AssertionError(f"outcome or score columns among inputs: {leaked}")
    return frame
