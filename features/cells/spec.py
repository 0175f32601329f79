"""``configs/cell_features.yaml``: the declared features of a map cell, typed so a typo is refused.

The spec is data: the builder (`features.cells.build`) reads the lags, windows, groups and dates
from it, and the column names and planner-readable descriptions are derived here, once, so the
model's inputs, the frame's columns and the reasons shown on the map always agree.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.contract.schema import ADMIN_CATEGORY, APPEAL_CATEGORY, CRIME_TYPE, SENTENCE
from riskcast.configio import find_config, load_yaml_model

CELL_FEATURES_FILE = "cell_features.yaml"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")

Weeks = list[int]


def _weeks(values: list[int], what: str) -> list[int]:
    if any(v < 1 or v > 260 for v in values):
        raise ValueError(f"{what} must be between 1 and 260 weeks, got {values}")
    if len(set(values)) != len(values):
        raise ValueError(f"{what} has duplicates: {values}")
    return sorted(values)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Counts(_Strict):
    lags_weeks: Weeks = Field(default_factory=lambda: [1, 2, 4, 8, 13, 26, 52])
    windows_weeks: Weeks = Field(default_factory=lambda: [4, 13, 52, 156])
    by_crime_type_windows_weeks: Weeks = Field(default_factory=lambda: [4, 52])

    @field_validator("lags_weeks", "windows_weeks", "by_crime_type_windows_weeks")
    @classmethod
    def _check(cls, v: list[int]) -> list[int]:
        return _weeks(v, "weeks")


class NearRepeat(_Strict):
    half_lives_weeks: list[float] = Field(default_factory=lambda: [1.0, 2.0, 8.0])
    lookback_weeks: int = Field(default=52, ge=1, le=260)

    @field_validator("half_lives_weeks")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(h <= 0 for h in v) or len(set(v)) != len(v):
            raise ValueError(f"half-lives must be positive and distinct, got {v}")
        return sorted(v)


class Kernel(_Strict):
    """Smoothed hotspot maps of the incident points (the analyst's kernel density map as an
    input): a cell's count is noisy where incidents are few, and a hotspot that straddles a
    cell border splits its incidents between cells; a Gaussian kernel on the points, summed
    over long windows, estimates the stable rate around the cell from many more incidents."""

    bandwidths_km: list[float] = Field(default_factory=list)
    windows_weeks: Weeks = Field(default_factory=list)
    cutoff_bandwidths: float = Field(default=4.0, gt=0, le=10)

    @field_validator("bandwidths_km")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(b <= 0 or b > 20 for b in v) or len(set(v)) != len(v):
            raise ValueError(f"bandwidths must be distinct and in (0, 20] km, got {v}")
        return sorted(v)

    @field_validator("windows_weeks")
    @classmethod
    def _check(cls, v: list[int]) -> list[int]:
        return _weeks(v, "weeks")


class Ring(_Strict):
    distance: Literal[1, 2]
    lags_weeks: Weeks = Field(default_factory=list)
    windows_weeks: Weeks = Field(default_factory=list)
    half_lives_weeks: list[float] = Field(default_factory=list)

    @field_validator("lags_weeks", "windows_weeks")
    @classmethod
    def _check(cls, v: list[int]) -> list[int]:
        return _weeks(v, "weeks")


def _groups(groups: dict[str, list[str]], allowed: tuple[str, ...], what: str) -> None:
    for name, cats in groups.items():
        if not _NAME.match(name):
            raise ValueError(f"{what} group name {name!r} must be lower_snake_case")
        unknown = sorted(set(cats) - set(allowed))
        if unknown or not cats:
            raise ValueError(
                f"{what} group {name!r}: unknown categories {unknown} (known: {', '.join(allowed)})"
            )


class District(_Strict):
    incident_windows_weeks: Weeks = Field(default_factory=lambda: [4, 52])
    appeal_groups: dict[str, list[str]] = Field(default_factory=dict)
    appeal_lags_weeks: Weeks = Field(default_factory=lambda: [1, 2, 3, 4])
    appeal_windows_weeks: Weeks = Field(default_factory=list)
    admin_groups: dict[str, list[str]] = Field(default_factory=dict)
    admin_windows_weeks: Weeks = Field(default_factory=lambda: [4, 13])
    release_sentences: list[str] = Field(default_factory=lambda: ["imprisonment", "parole"])
    release_window_weeks: int | None = Field(default=26, ge=1, le=260)

    @field_validator(
        "incident_windows_weeks", "appeal_lags_weeks", "appeal_windows_weeks", "admin_windows_weeks"
    )
    @classmethod
    def _check(cls, v: list[int]) -> list[int]:
        return _weeks(v, "weeks")

    @model_validator(mode="after")
    def _categories(self) -> District:
        _groups(self.appeal_groups, APPEAL_CATEGORY, "appeal")
        _groups(self.admin_groups, ADMIN_CATEGORY, "admin")
        unknown = sorted(set(self.release_sentences) - set(SENTENCE))
        if unknown:
            raise ValueError(f"release_sentences: unknown {unknown} (known: {', '.join(SENTENCE)})")
        return self


class Seasonality(_Strict):
    week_of_year: bool = True
    holidays: list[str] = Field(default_factory=list)

    @field_validator("holidays")
    @classmethod
    def _dates(cls, v: list[str]) -> list[str]:
        for item in v:
            m = _MONTH_DAY.match(item)
            try:
                if m:
                    date(2024, int(m.group(1)), int(m.group(2)))  # a leap year admits 02-29
                else:
                    date.fromisoformat(item)
            except ValueError as exc:
                raise ValueError(f"holiday {item!r}: not MM-DD nor YYYY-MM-DD ({exc})") from exc
        return v

    def holidays_between(self, first: date, last: date) -> int:
        """Configured holidays falling on ``first`` .. ``last`` (both included)."""
        n = 0
        for item in self.holidays:
            m = _MONTH_DAY.match(item)
            if m is None:
                n += first <= date.fromisoformat(item) <= last
                continue
            month, day = int(m.group(1)), int(m.group(2))
            for year in range(first.year, last.year + 1):
                try:
                    n += first <= date(year, month, day) <= last
                except ValueError:  # 29 February of a common year
                    continue
        return n


class CellSpec(_Strict):
    """The whole spec; `model_inputs` lists the frame's feature columns in a fixed order."""

    version: Literal[1] = 1
    entity: Literal["cell"] = "cell"
    counts: Counts = Field(default_factory=Counts)
    near_repeat: NearRepeat = Field(default_factory=NearRepeat)
    rings: list[Ring] = Field(default_factory=list)
    kernel: Kernel = Field(default_factory=Kernel)
    district: District = Field(default_factory=District)
    seasonality: Seasonality = Field(default_factory=Seasonality)

    @model_validator(mode="after")
    def _distinct_rings(self) -> CellSpec:
        distances = [r.distance for r in self.rings]
        if len(set(distances)) != len(distances):
            raise ValueError(f"rings: each distance at most once, got {distances}")
        return self

    # ---- derived names ---------------------------------------------------------------------
    def crime_types(self) -> tuple[str, ...]:
        return CRIME_TYPE

    def max_lookback_weeks(self) -> int:
        """The most weeks back any incident feature looks (the builder's array width)."""
        c = self.counts
        weeks = [*c.lags_weeks, *c.windows_weeks, *c.by_crime_type_windows_weeks]
        weeks += [self.near_repeat.lookback_weeks, *self.district.incident_windows_weeks]
        for r in self.rings:
            weeks += [*r.lags_weeks, *r.windows_weeks]
        return max([*weeks, *self.kernel.windows_weeks])

    def descriptions(self) -> dict[str, str]:
        """Feature -> a sentence a patrol planner can read, for every model input, in order."""
        out: dict[str, str] = {}
        c = self.counts
        for k in c.lags_weeks:
            when = "last week" if k == 1 else f"the week {k} weeks back"
            out[f"count_all_lag{k}"] = f"incidents registered in the cell in {when}"
        for w in c.windows_weeks:
            out[f"count_all_{w}w"] = f"incidents registered in the cell in the last {w} weeks"
        for t in CRIME_TYPE:
            for w in c.by_crime_type_windows_weeks:
                label = t.replace("_", " ")
                out[f"count_{t}_{w}w"] = f"{label} incidents registered in the cell, last {w} weeks"
        lookback = self.near_repeat.lookback_weeks
        for h in self.near_repeat.half_lives_weeks:
            hl = half_life_label(h)
            out[f"intensity_hl{hl}w"] = (
                f"recent incidents in the cell, each weighted down by half every {hl} week(s) "
                f"(near-repeat; last {lookback} weeks)"
            )
        for r in self.rings:
            around = "6 neighbouring cells" if r.distance == 1 else "12 cells of the second ring"
            for k in r.lags_weeks:
                out[f"ring{r.distance}_count_lag{k}"] = (
                    f"incidents in the {around}, the week {k} week(s) back"
                )
            for w in r.windows_weeks:
                out[f"ring{r.distance}_count_{w}w"] = f"incidents in the {around}, last {w} weeks"
            for h in r.half_lives_weeks:
                hl = half_life_label(h)
                out[f"ring{r.distance}_intensity_hl{hl}w"] = (
                    f"recent incidents in the {around}, weighted down by half every {hl} weeks"
                )
        kern = self.kernel
        for b in kern.bandwidths_km:
            for w in kern.windows_weeks:
                out[kernel_name(b, w)] = (
                    f"incidents of the last {w} weeks near the cell on a smoothed hotspot map "
                    f"(each incident spread over about {b:g} km around it)"
                )
        d = self.district
        for w in d.incident_windows_weeks:
            out[f"district_count_{w}w"] = (
                f"incidents registered in the cell's district, last {w} weeks"
            )
        for g, cats in d.appeal_groups.items():
            for k in d.appeal_lags_weeks:
                out[f"district_appeals_{g}_lag{k}"] = (
                    f"citizens' appeals about {' or '.join(cats)} in the district, "
                    f"the week {k} week(s) back"
                )
            for w in d.appeal_windows_weeks:
                out[f"district_appeals_{g}_{w}w"] = (
                    f"citizens' appeals about {' or '.join(cats)} in the district, last {w} weeks "
                    "(the district's usual level, against which the recent weeks stand out)"
                )
        for g, cats in d.admin_groups.items():
            for w in d.admin_windows_weeks:
                out[f"district_admin_{g}_{w}w"] = (
                    f"administrative {' or '.join(c.replace('_', ' ') for c in cats)} offences "
                    f"of the district's residents registered in the last {w} weeks "
                    "(0 where the person registers are not delivered)"
                )
        if d.release_window_weeks is not None:
            out[f"district_released_{d.release_window_weeks}w"] = (
                f"residents of the district released from custody in the last "
                f"{d.release_window_weeks} weeks (0 where the person registers are not delivered)"
            )
        s = self.seasonality
        if s.week_of_year:
            out["week_sin"] = "time of year of the forecast week (sine of the week of the year)"
            out["week_cos"] = "time of year of the forecast week (cosine of the week of the year)"
        if s.holidays:
            out["holidays_in_week"] = "public holidays in the forecast week (configured dates)"
        out["ring"] = (
            "0 = the cell had incidents in the universe's lookback, k = it is a k-ring neighbour"
        )
        return out

    def model_inputs(self) -> list[str]:
        return list(self.descriptions())

    def digest(self) -> str:
        """sha256 of the normalised spec (defaults filled, keys sorted): stored with a run."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def half_life_label(half_life: float) -> str:
    return (
        str(int(half_life)) if float(half_life).is_integer() else str(half_life).replace(".", "p")
    )


def kernel_name(bandwidth_km: float, weeks: int) -> str:
    return f"kernel_{half_life_label(bandwidth_km)}km_{weeks}w"


def load_cell_spec(path: Path | None = None) -> CellSpec:
    """The cell feature spec at ``path``, or ``cell_features.yaml`` found the usual way."""
    return load_yaml_model(
        CellSpec, path or find_config(CELL_FEATURES_FILE), "cell feature specification"
    )
