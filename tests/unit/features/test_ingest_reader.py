"""Type coercion of delivered files: physical types vary, the stored types do not."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from features.contract import TABLES, RuleContext
from features.ingest.reader import coerce, scan_table
from features.ingest.validate import known_persons, validate_frames, validate_table
from tests.factories import EXTRACTED_AT, valid_tables

T = TABLES["incidents"]
CTX = RuleContext(EXTRACTED_AT)


def _incidents(**columns: pl.Series) -> pl.DataFrame:
    frame = valid_tables(3, seed=4)["incidents"].head(3)
    return frame.with_columns(**columns)


def test_parquet_timestamps_of_any_unit_and_zone_become_utc_microseconds(tmp_path: Path) -> None:
    instant = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    occurred = pl.Series([instant] * 3).dt.cast_time_unit("ns").dt.convert_time_zone("Asia/Almaty")
    registered = pl.Series([datetime(2024, 5, 1, 13, 0)] * 3).dt.cast_time_unit("ms")  # naive
    path = tmp_path / "incidents.parquet"
    _incidents(occurred_at=occurred, registered_at=registered).write_parquet(path)
    read = scan_table(T, path)
    out = validate_table(read, T, CTX)
    assert out.quarantined == 0
    assert out.accepted.schema["occurred_at"] == pl.Datetime("us", "UTC")
    assert out.accepted["occurred_at"].to_list() == [instant] * 3
    assert out.accepted["registered_at"][0] == datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


def test_strings_where_numbers_are_expected_are_coerced_or_type_violations() -> None:
    frame = _incidents(
        lat=pl.Series(["43.25", " 43.5 ", "north"]), lon=pl.Series(["76", "NaN", None])
    )
    read = coerce(frame.lazy(), T, dict(frame.schema))
    out = validate_table(read, T, CTX)
    assert out.accepted["lat"].to_list() == [43.25]
    assert out.rule_counts == {
        "incidents.lat_type": 1,
        "incidents.lon_type": 1,
        "incidents.lon_required": 1,
    }
    q = out.quarantine.sort("_row")
    assert q["lat"].to_list() == [" 43.5 ", "north"]  # original text kept
    assert q["lon"].to_list() == ["NaN", None]


def test_ints_delivered_as_floats_must_be_integral_and_dates_as_midnight_timestamps() -> None:
    frames = valid_tables(3, seed=4)
    frame = frames["releases"].with_columns(
        sentence_months=pl.Series([12.0, 12.5, 3.0]),
        released_at=pl.Series(
            [datetime(2020, 1, 1), datetime(2020, 1, 2, 6, 0), datetime(2020, 1, 3)]
        ),
        supervised_until=pl.lit(None, dtype=pl.Date),
        recorded_at=pl.lit(datetime(2020, 2, 1, tzinfo=UTC)),
    )
    out = validate_frames({"persons": frames["persons"], "releases": frame}, CTX)["releases"]
    assert out.accepted["sentence_months"].to_list() == [12, 3]
    assert out.accepted["released_at"].to_list() == [date(2020, 1, 1), date(2020, 1, 3)]
    assert out.rule_counts == {"releases.sentence_months_type": 1, "releases.released_at_type": 1}
    assert out.quarantine["released_at"].to_list() == ["2020-01-02T06:00:00Z"]


def test_csv_text_is_parsed_per_contract(tmp_path: Path) -> None:
    path = tmp_path / "criminal_cases.csv"
    frame = valid_tables(2, seed=4)["criminal_cases"].head(2)
    header = ",".join(frame.columns)
    first, second = frame.rows(named=True)

    def line(row: dict[str, object], **over: str) -> str:
        cells = {
            k: ""
            if v is None
            else (v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, datetime) else str(v))
            for k, v in row.items()
        }
        cells["street"] = "TRUE"
        cells.update(over)
        return ",".join(cells[c] for c in frame.columns)

    path.write_text(
        "\n".join(
            [
                header,
                line(first),
                line(second, registered_at="2024-01-01T10:00:00+02:00", street="maybe"),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    t = TABLES["criminal_cases"]
    persons = known_persons(valid_tables(2, seed=4)["persons"].lazy())
    out = validate_table(scan_table(t, path), t, CTX, persons)
    assert out.accepted["street"].to_list() == [True]
    assert out.accepted["registered_at"][0] == first["registered_at"]
    assert out.rule_counts.get("criminal_cases.street_type") == 1
    assert "criminal_cases.registered_at_type" not in out.rule_counts


def test_ids_delivered_as_integers_and_all_null_columns_are_read() -> None:
    frame = valid_tables(3, seed=4)["persons"].with_columns(
        person_id=pl.Series([101, 102, None]), district=pl.lit(None)
    )
    assert frame.schema["district"] == pl.Null
    t = TABLES["persons"]
    out = validate_table(coerce(frame.lazy(), t, dict(frame.schema)), t, CTX)
    assert out.accepted["person_id"].to_list() == ["101", "102"]
    assert out.accepted["district"].to_list() == [None, None]
    assert out.rule_counts == {"persons.person_id_required": 1}
