"""Fixed code lists of the simulated country: regions, districts, articles and their properties.

These are facts of the simulated world, not tuning knobs (those live in `config.py`). Enum
values of the contract are never spelled here; they are looked up from `features.contract`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract.schema import ADMIN_CATEGORY, CRIME_CATEGORY, GRAVITY


@dataclass(frozen=True)
class Region:
    code: str
    city: str
    lat: float
    lon: float


# Four regions with their main city's real coordinates.
REGIONS: tuple[Region, ...] = (
    Region("AST", "Astana", 51.1694, 71.4491),
    Region("ALA", "Almaty", 43.2389, 76.8897),
    Region("SHY", "Shymkent", 42.3417, 69.5901),
    Region("KAR", "Karaganda", 49.8047, 73.1094),
)
REGION_CODES: tuple[str, ...] = tuple(r.code for r in REGIONS)
URBAN_DISTRICTS = 5
RURAL_DISTRICTS = 3


@dataclass(frozen=True)
class District:
    code: str
    region: int  # index into REGIONS
    urban: bool
    lat: float
    lon: float
    share: float  # share of the region's population


def _districts() -> tuple[District, ...]:
    """Urban districts ring the city centre (~2-6 km), rural ones lie 25-60 km out."""
    out: list[District] = []
    for ri, reg in enumerate(REGIONS):
        for k in range(URBAN_DISTRICTS):
            angle = 2 * np.pi * k / URBAN_DISTRICTS + 0.3 * ri
            radius = 0.0 if k == 0 else 0.045
            share = (0.20, 0.17, 0.15, 0.14, 0.12)[k]
            out.append(
                District(
                    f"{reg.code}-U{k + 1}",
                    ri,
                    True,
                    round(reg.lat + radius * float(np.sin(angle)), 5),
                    round(reg.lon + 1.4 * radius * float(np.cos(angle)), 5),
                    share,
                )
            )
        for k in range(RURAL_DISTRICTS):
            angle = 2 * np.pi * k / RURAL_DISTRICTS + 1.1 + 0.5 * ri
            radius = 0.25 + 0.12 * k
            out.append(
                District(
                    f"{reg.code}-R{k + 1}",
                    ri,
                    False,
                    round(reg.lat + radius * float(np.sin(angle)), 5),
                    round(reg.lon + 1.4 * radius * float(np.cos(angle)), 5),
                    (0.10, 0.07, 0.05)[k],
                )
            )
    return tuple(out)


DISTRICTS: tuple[District, ...] = _districts()
DISTRICT_CODES: tuple[str, ...] = tuple(d.code for d in DISTRICTS)


@dataclass(frozen=True)
class Article:
    """A criminal-code article (one part of it): category, gravity, weight within category,
    probability that an offence is detected and registered, share committed in public."""

    code: str
    category: str
    gravity: str
    weight: float
    detect: float
    street: float


# Criminal Code of the Republic of Kazakhstan (2014), the most frequent articles per category.
ARTICLES: tuple[Article, ...] = (
    Article("99", "violent", "especially_grave", 0.02, 0.92, 0.30),
    Article("106", "violent", "grave", 0.07, 0.85, 0.40),
    Article("107", "violent", "medium", 0.14, 0.75, 0.40),
    Article("108", "violent", "minor", 0.24, 0.60, 0.50),
    Article("109", "violent", "misdemeanour", 0.30, 0.55, 0.50),
    Article("110", "violent", "medium", 0.05, 0.60, 0.10),
    Article("115", "violent", "misdemeanour", 0.18, 0.50, 0.20),
    Article("188", "property", "minor", 0.38, 0.35, 0.30),
    Article("188", "property", "medium", 0.15, 0.40, 0.20),
    Article("190", "property", "minor", 0.14, 0.30, 0.05),
    Article("191", "property", "medium", 0.15, 0.45, 0.75),
    Article("192", "property", "grave", 0.05, 0.65, 0.60),
    Article("200", "property", "minor", 0.13, 0.40, 0.85),
    Article("296", "drugs", "minor", 0.60, 0.50, 0.40),
    Article("297", "drugs", "grave", 0.30, 0.55, 0.30),
    Article("298", "drugs", "grave", 0.10, 0.50, 0.10),
    Article("293", "public_order", "minor", 0.55, 0.70, 0.90),
    Article("293", "public_order", "medium", 0.15, 0.75, 0.90),
    Article("287", "public_order", "medium", 0.15, 0.60, 0.40),
    Article("294", "public_order", "misdemeanour", 0.15, 0.40, 0.80),
    Article("120", "sexual", "grave", 0.50, 0.45, 0.20),
    Article("121", "sexual", "grave", 0.20, 0.40, 0.10),
    Article("122", "sexual", "medium", 0.30, 0.40, 0.05),
    Article("189", "economic", "medium", 0.40, 0.30, 0.00),
    Article("190", "economic", "medium", 0.20, 0.35, 0.00),
    Article("216", "economic", "minor", 0.20, 0.30, 0.00),
    Article("245", "economic", "medium", 0.20, 0.35, 0.00),
    Article("345", "traffic", "medium", 0.50, 0.90, 1.00),
    Article("346", "traffic", "misdemeanour", 0.50, 0.95, 1.00),
    Article("139", "other", "misdemeanour", 0.30, 0.70, 0.00),
    Article("380", "other", "minor", 0.30, 0.90, 0.60),
    Article("431", "other", "minor", 0.20, 0.80, 0.10),
    Article("423", "other", "minor", 0.20, 0.40, 0.00),
)
ARTICLE_CATEGORY = np.array([CRIME_CATEGORY.index(a.category) for a in ARTICLES], dtype=np.int64)
ARTICLE_GRAVITY = np.array([GRAVITY.index(a.gravity) for a in ARTICLES], dtype=np.int64)
ARTICLE_DETECT = np.array([a.detect for a in ARTICLES], dtype=np.float64)
ARTICLE_STREET = np.array([a.street for a in ARTICLES], dtype=np.float64)
ARTICLE_CODES: tuple[str, ...] = tuple(a.code for a in ARTICLES)
VIOLENT = CRIME_CATEGORY.index("violent")


def article_cdf_by_category() -> tuple[np.ndarray, np.ndarray]:
    """Per category: the article indices and their cumulative weights, padded to equal length."""
    width = max(sum(1 for a in ARTICLES if a.category == c) for c in CRIME_CATEGORY)
    index = np.zeros((len(CRIME_CATEGORY), width), dtype=np.int64)
    cdf = np.ones((len(CRIME_CATEGORY), width), dtype=np.float64)
    for ci, cat in enumerate(CRIME_CATEGORY):
        members = [i for i, a in enumerate(ARTICLES) if a.category == cat]
        weights = np.array([ARTICLES[i].weight for i in members])
        index[ci, : len(members)] = members
        index[ci, len(members) :] = members[-1]
        cdf[ci, : len(members)] = np.cumsum(weights) / weights.sum()
    return index, cdf


@dataclass(frozen=True)
class AdminArticle:
    code: str
    category: str
    weight: float
    fine_mci: tuple[int, int]  # fine range in monthly calculation indices


# Code of Administrative Offences of the Republic of Kazakhstan, frequent articles.
ADMIN_ARTICLES: tuple[AdminArticle, ...] = (
    AdminArticle("590", "traffic", 0.30, (3, 10)),
    AdminArticle("592", "traffic", 0.40, (5, 20)),
    AdminArticle("596", "traffic", 0.12, (5, 15)),
    AdminArticle("608", "traffic", 0.08, (30, 50)),
    AdminArticle("610", "traffic", 0.10, (5, 10)),
    AdminArticle("434", "public_order", 0.75, (5, 20)),
    AdminArticle("435", "public_order", 0.25, (5, 15)),
    AdminArticle("440", "alcohol", 0.65, (5, 15)),
    AdminArticle("442", "alcohol", 0.35, (10, 20)),
    AdminArticle("73", "domestic", 0.70, (5, 10)),
    AdminArticle("73-1", "domestic", 0.30, (5, 10)),
    AdminArticle("433", "drugs", 1.00, (15, 30)),
    AdminArticle("136", "property", 1.00, (10, 20)),
    AdminArticle("462", "other", 0.50, (5, 50)),
    AdminArticle("669", "other", 0.50, (5, 30)),
)
ADMIN_ARTICLE_CATEGORY = np.array(
    [ADMIN_CATEGORY.index(a.category) for a in ADMIN_ARTICLES], dtype=np.int64
)
ADMIN_ARTICLE_CODES: tuple[str, ...] = tuple(a.code for a in ADMIN_ARTICLES)
ADMIN_FINE_LO = np.array([a.fine_mci[0] for a in ADMIN_ARTICLES], dtype=np.int64)
ADMIN_FINE_HI = np.array([a.fine_mci[1] for a in ADMIN_ARTICLES], dtype=np.int64)
MCI_KZT = 3932.0  # monthly calculation index, 2025

APPEAL_TEXTS: dict[str, tuple[str, ...]] = {
    "violence": ("Fights near the bus stop at night", "A man threatens neighbours"),
    "bullying": ("Teenagers harass younger pupils after classes", "Bullying at the school gate"),
    "corruption": ("An official asked for money for a certificate",),
    "utilities": ("Water supply interrupted for days", "No heating in the building"),
    "drugs": ("Syringes found in the playground", "Suspected drug dealing in the yard"),
    "alcohol": ("Drinking in the courtyard every evening", "Shop sells alcohol at night"),
    "noise": ("Loud music after midnight", "Car alarms and shouting at night"),
    "other": ("Street lights are broken", "Stray dogs near the school"),
}
