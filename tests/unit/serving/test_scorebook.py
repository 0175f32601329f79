"""The score book answers exactly what direct scoring answers, for scores and risk lists."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from serving.app import create_app
from serving.scorebook import NO_REASON, top_positive
from tests.service_helpers import AsgiClient, RecordingLog, ServiceEnv, serve, settings_for

PURPOSE = "case_review"


def test_top_positive_orders_and_pads() -> None:
    contrib = np.array([[0.1, -0.5, 0.3, 0.0], [-1.0, -2.0, -0.1, -0.3], [0.2, 0.2, 0.0, 0.5]])
    top = top_positive(contrib, 3)
    assert top[0].tolist() == [2, 0, NO_REASON]
    assert top[1].tolist() == [NO_REASON] * 3
    assert top[2].tolist()[0] == 3 and sorted(top[2].tolist()[1:]) == [0, 1]


@pytest.fixture(scope="module")
def clients(service_env: ServiceEnv) -> Iterator[tuple[AsgiClient, AsgiClient]]:
    from serving.api.deps import get_access_log

    wide = {  # whole-unit comparisons: above the default per-role list bounds
        "max_list_capacity": {"officer": 100_000},
        "max_page_size": {"officer": 1000},
    }
    booked = create_app(settings_for(service_env.home, scorebook=True, **wide))
    direct = create_app(settings_for(service_env.home, scorebook=False, **wide))
    log = RecordingLog()
    for app in (booked, direct):
        app.dependency_overrides[get_access_log] = lambda: log
    with serve(booked) as b, serve(direct) as d:
        keeper = booked.state.riskcast.book_keeper
        assert keeper is not None and direct.state.riskcast.book_keeper is None
        book = keeper.wait(timeout=120)
        assert book is not None, keeper.status
        yield b, d


def test_scores_from_the_book_equal_direct_scores(
    clients: tuple[AsgiClient, AsgiClient], service_env: ServiceEnv
) -> None:
    booked, direct = clients
    ids = [*service_env.persons["AST"][:40], "nobody"]
    body = {"ids": ids, "purpose": PURPOSE}
    token = service_env.tokens["olga"]
    a = booked.post("/v1/scores", json_body=body, token=token).json()["results"]
    b = direct.post("/v1/scores", json_body=body, token=token).json()["results"]
    assert [r["status"] for r in a] == [r["status"] for r in b] and a[-1]["status"] == "unknown"
    for x, y in zip(a[:-1], b[:-1], strict=True):
        assert x["probability"] == pytest.approx(y["probability"], abs=1e-12)
        assert x["tier"] == y["tier"]
        ex, ey = x["explanation"], y["explanation"]
        assert [r["sentence"] for r in ex["top_reasons"]] == [
            r["sentence"] for r in ey["top_reasons"]
        ]
        assert [s["id"] for s in ex["support"]] == [s["id"] for s in ey["support"]]
        for name, value in ey["contributions"].items():
            assert ex["contributions"][name] == pytest.approx(value, abs=1e-9)
        total = sum(ex["contributions"].values()) + ex["bias"]
        assert total == pytest.approx(ex["raw_score"], abs=1e-6)


@pytest.mark.parametrize(
    "params",
    [
        {"capacity": 30, "limit": 10, "offset": 5},
        {"tier": ["high", "very_high"], "capacity": 500, "limit": 100},
        {"capacity": 100_000, "limit": 1000},
    ],
)
def test_risk_lists_from_the_book_equal_direct_lists(
    clients: tuple[AsgiClient, AsgiClient], service_env: ServiceEnv, params: dict[str, object]
) -> None:
    booked, direct = clients
    query = {"region": "AST", "purpose": PURPOSE, **params}
    token = service_env.tokens["olga"]
    a = booked.get("/v1/risk-lists", params=query, token=token).json()
    b = direct.get("/v1/risk-lists", params=query, token=token).json()
    assert a["total"] == b["total"]
    assert [r["person_id"] for r in a["rows"]] == [r["person_id"] for r in b["rows"]]
    assert [r["rank"] for r in a["rows"]] == [r["rank"] for r in b["rows"]]
    assert [r["top_reasons"] for r in a["rows"]] == [r["top_reasons"] for r in b["rows"]]
    probabilities = [r["probability"] for r in a["rows"]]
    assert probabilities == sorted(probabilities, reverse=True)


def test_district_lists_are_slices_of_the_region(
    clients: tuple[AsgiClient, AsgiClient], service_env: ServiceEnv
) -> None:
    booked, direct = clients
    token = service_env.tokens["olga"]
    region = booked.get(
        "/v1/risk-lists",
        params={"region": "AST", "purpose": PURPOSE, "capacity": 100_000, "limit": 1000},
        token=token,
    ).json()["rows"]
    district = region[0]["district"]
    query = {"region": "AST", "district": district, "purpose": PURPOSE, "limit": 1000}
    a = booked.get("/v1/risk-lists", params=query, token=token).json()["rows"]
    b = direct.get("/v1/risk-lists", params=query, token=token).json()["rows"]
    expected = [r["person_id"] for r in region if r["district"] == district][:100]
    assert [r["person_id"] for r in a] == expected == [r["person_id"] for r in b]


def test_readiness_names_the_score_book_state_and_the_population(
    clients: tuple[AsgiClient, AsgiClient], service_env: ServiceEnv
) -> None:
    booked, direct = clients
    ready = booked.get("/readyz").json()
    assert ready["status"] == "ready" and ready["score_book"].startswith("ready (")
    inside = sum(len(v) for v in service_env.persons.values())
    outside = sum(len(v) for v in service_env.outside.values())
    assert ready["in_population"] == inside and ready["outside_population"] == outside
    assert "population `with_record`" in ready["population"]
    assert f"{inside} persons in the population, {outside} outside" in ready["score_book"]
    plain = direct.get("/readyz").json()
    assert plain["score_book"] == "off" and plain["in_population"] is None


def _small_book(n: int = 400) -> tuple[object, np.ndarray]:
    import lightgbm as lgb
    import polars as pl

    from serving.scorebook import build_scorebook
    from training.model import FeatureInfo, RiskModel, Tier

    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] + rng.normal(size=n) > 0).astype(float)
    names = [f"f{i}" for i in range(4)]
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": 1},
        lgb.Dataset(x, y, feature_name=names),
        num_boost_round=20,
    )
    model = RiskModel(
        booster,
        None,
        [Tier("low", 0.0), Tier("high", 0.5)],
        [FeatureInfo(f, "criminal_history", "static", 0, f) for f in names],
    )
    ids = [f"p{i}" for i in range(n)]
    vectors = pl.DataFrame({"person_id": ids, **{f: x[:, i] for i, f in enumerate(names)}})
    directory = pl.DataFrame({"person_id": ids, "region": ["R"] * n, "district": [None] * n})
    book = build_scorebook(
        model, vectors, directory, model_version="1", materialization="m", explain_first=10
    )
    return book, booster.predict(x, pred_contrib=True)


def test_contributions_survive_evictions_and_concurrent_readers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full cache is emptied by whoever adds to it; no reader may lose a row to that (it
    answered KeyError, a 500), and build-time rows are never evicted."""
    import threading

    from serving import scorebook

    book, expected = _small_book()
    monkeypatch.setattr(scorebook, "CONTRIB_CACHE", 100)
    pinned = set(book.pinned)  # type: ignore[attr-defined]
    assert len(pinned) == 10
    for rows in (np.arange(0, 90), np.arange(50, 100), np.arange(80, 120)):
        got = book.contributions(rows)  # type: ignore[attr-defined]
        np.testing.assert_allclose(got, expected[rows], atol=1e-12)
    errors: list[BaseException] = []

    def read(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(60):
                rows = rng.choice(400, size=40, replace=False)
                got = book.contributions(rows)  # type: ignore[attr-defined]
                np.testing.assert_allclose(got, expected[rows], atol=1e-12)
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert set(book.pinned) == pinned  # type: ignore[attr-defined]
