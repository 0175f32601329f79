"""Risk lists: a unit's persons ranked by probability, what has been done for each, and what
the probabilities mean.

`risk_list` is what `GET /v1/risk-lists` and the officers' list page call. Beyond the rules
of every read (`serving.services.scores`: purpose, regions, population) a list is bounded per
role (``capacity`` and page size, `ServingSettings.max_list_capacity` and ``max_page_size``:
a request above them is refused naming the limit, never silently cut), and a list read from an
online store that holds nothing is refused (503 with why), never an empty list that reads like
"nobody at risk". Each row carries the person's latest decision, so that two officers do not
act on the same person twice, and the list can be kept to persons with no decision yet.
"""

from __future__ import annotations

import csv
import io

from riskcast.errors import FieldError
from serving.schemas import RiskListResponse, RiskListRow
from serving.services.decisions import decided_persons, latest_decisions
from serving.services.meaning import score_meaning
from serving.services.policy import check_purpose, forbid_regions
from serving.services.scores import check_materialised, rank_unit
from serving.state import AccessLogWriter, LoadedModel, ServiceState
from serving.users import User


def check_list_limits(state: ServiceState, user: User, *, capacity: int, limit: int) -> None:
    """``capacity`` and ``limit`` within the role's configured maxima (else a 422 naming the
    limit and the setting). A role without a configured maximum has no list at all."""
    role = user.role.value
    bounds = (
        ("capacity", capacity, state.settings.max_list_capacity, "RISKCAST_MAX_LIST_CAPACITY"),
        ("limit", limit, state.settings.max_page_size, "RISKCAST_MAX_PAGE_SIZE"),
    )
    for name, asked, limits, setting in bounds:
        most = limits.get(role)
        if most is None:
            raise FieldError(["query", name], f"the role {role} has no {name} limit ({setting})")
        if asked > most:
            raise FieldError(
                ["query", name],
                f"{name} {asked} is above the limit of {most} for the role {role} "
                f"({setting}); ask for at most {most}",
            )


def risk_list(
    state: ServiceState,
    champion: LoadedModel,
    user: User,
    access: AccessLogWriter,
    *,
    region: str,
    purpose: str | None,
    district: str | None = None,
    tiers: list[str] | None = None,
    capacity: int = 100,
    offset: int = 0,
    limit: int = 50,
    output: str = "json",
    undecided_only: bool = False,
) -> RiskListResponse:
    """Persons of a region/district inside the model's population, ranked by probability, with
    their top reasons and latest decision; persons outside the population are counted, never
    listed; ``undecided_only`` leaves out persons with a decision (before the capacity cut).
    ``output`` (the format asked for) is only recorded in the access log; `risk_list_csv`
    renders CSV."""
    purpose = check_purpose(state, purpose, ["query", "purpose"])
    check_list_limits(state, user, capacity=capacity, limit=limit)
    known = [t.name for t in champion.model.tiers]
    for t in tiers or []:
        if t not in known:
            raise FieldError(["query", "tier"], f"unknown tier {t!r}; tiers are {known}")
    params: dict[str, object] = {
        "region": region,
        "district": district,
        "tier": tiers,
        "capacity": capacity,
        "offset": offset,
        "limit": limit,
        "format": output,
    }
    if undecided_only:
        params["undecided_only"] = True
    assert state.directory is not None and state.store is not None
    if region not in user.regions:
        forbid_regions(
            user,
            [f"region:{region}"],
            access,
            purpose=purpose,
            action="risk-list",
            params=params,
            model_version=champion.version,
        )
    check_materialised(state)
    ranking = rank_unit(
        state,
        champion,
        region,
        district,
        tiers,
        capacity=capacity,
        offset=offset,
        limit=limit,
        exclude=decided_persons(state, region) if undecided_only else None,
    )
    page = ranking.page
    ids = page["person_id"].to_list()
    units = state.directory.units(ids)
    latest = latest_decisions(state, ids)
    rows = [
        RiskListRow(
            rank=int(r["rank"]),
            person_id=r["person_id"],
            region=units[r["person_id"]][0],
            district=units[r["person_id"]][1],
            probability=r["probability"],
            tier=r["tier"],
            top_reasons=r["top_reasons"],
            latest_decision=latest.get(r["person_id"]),
        )
        for r in page.iter_rows(named=True)
    ]
    if state.metrics is not None:
        state.metrics.scores_served(len(rows), "risk-list")
    params["in_population"] = ranking.in_population
    params["outside_population"] = ranking.outside_population
    access.append(
        actor=user.name,
        role=user.role.value,
        purpose=purpose,
        action="risk-list",
        persons=[r.person_id for r in rows],
        params=params,
        model_version=champion.version,
        status=200,
    )
    return RiskListResponse(
        model_version=champion.version,
        region=region,
        district=district,
        tiers=tiers,
        capacity=capacity,
        total=ranking.total,
        offset=offset,
        limit=limit,
        population=champion.scope.describe(),
        in_population=ranking.in_population,
        outside_population=ranking.outside_population,
        rows=rows,
        undecided_only=undecided_only,
        meaning=score_meaning(state, champion),
    )


def risk_list_csv(listing: RiskListResponse) -> str:
    """The list as CSV, after ``#`` lines saying whom it covers and what the probability is
    of (pandas: ``comment="#"``)."""
    out = io.StringIO()
    unit = listing.region + (f"/{listing.district}" if listing.district else "")
    out.write(f"# risk list of {unit}, model version {listing.model_version}\n")
    out.write(f"# population of validity: {listing.population}\n")
    out.write(
        f"# persons of the unit inside it: {listing.in_population}; outside it (never scored, "
        f"never listed): {listing.outside_population}; listed: {listing.total}\n"
    )
    if listing.meaning is not None:
        out.write(f"# probability of: {listing.meaning.event}\n")
    writer = csv.writer(out)
    writer.writerow(
        ["rank", "person_id", "region", "district", "probability", "tier", "top_reasons"]
    )
    for r in listing.rows:
        writer.writerow(
            [
                r.rank,
                r.person_id,
                r.region,
                r.district or "",
                f"{r.probability:.6f}",
                r.tier,
                " | ".join(r.top_reasons),
            ]
        )
    return out.getvalue()
