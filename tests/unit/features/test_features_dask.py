"""Feature builds on a LocalCluster (2 process workers) equal the single-machine build exactly,
every value, on a simulated delivery; the partitioning hash is FNV-1a as documented."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from features.frames.builder import collect_features, write_features
from features.frames.definitions import FeatureSpec, load_spec
from features.frames.partition import person_bucket
from features.frames.scope import scope_columns
from features.store.offline import OfflineStore
from riskcast import cluster
from riskcast.cluster import ClusterError, Session
from serving.cli import build_app
from tests.dask_helpers import dask_session, doomed_session, killing
from tests.training_helpers import tiny_delivery

__all__ = ["dask_session", "doomed_session"]

REPO = Path(__file__).resolve().parents[3]
SPEC: FeatureSpec = load_spec(REPO / "configs" / "features.yaml")
DATES = [date(2022, 6, 30), date(2024, 12, 31), date(2025, 12, 31)]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_delivery(tmp_path_factory.mktemp("dask-features"), persons=1500, seed=5)[1]


def _fnv1a64(text: str) -> int:
    """The reference: FNV-1a 64 as its authors define it, one byte at a time."""
    h = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) % 2**64
    return h


def test_bucket_is_fnv1a_of_the_utf8_bytes() -> None:
    rng = random.Random(3)
    alphabet = "abcXYZ0189-_éßø漢字"
    ids = [
        "",
        "a",
        "P0000001",
        *("".join(rng.choices(alphabet, k=rng.randint(0, 24))) for _ in range(500)),
    ]
    assert _fnv1a64("a") == 0xAF63DC4C8601EC8C  # the published test vector
    for parts in (1, 2, 7, 64):
        got = person_bucket(pl.Series(ids), parts).tolist()
        assert got == [_fnv1a64(i) % parts for i in ids]
    fixed = [f"P{rng.randrange(10**11):011d}" for _ in range(300)]  # one length: no mask
    for ids_of_a_length in (fixed, [f"{i}é" for i in fixed]):
        got = person_bucket(pl.Series(ids_of_a_length), 13).tolist()
        assert got == [_fnv1a64(i) % 13 for i in ids_of_a_length]
    sliced = pl.Series(ids)[100:300]  # an Arrow array with an offset
    assert person_bucket(sliced, 5).tolist() == [_fnv1a64(i) % 5 for i in ids[100:300]]


@pytest.mark.parametrize("population", ["all", "with_record", "released"])
def test_cluster_build_equals_single_machine(
    home: Path, dask_session: Session, population: str
) -> None:
    store = OfflineStore(home)
    single = collect_features(store, SPEC, DATES, population).sort("as_of", "person_id")
    with cluster.active(dask_session):
        spread = collect_features(store, SPEC, DATES, population)
    assert single.height > 0
    assert_frame_equal(spread, single)  # every column, every value, the same dtypes


def test_scope_on_the_cluster_equals_single_machine(home: Path, dask_session: Session) -> None:
    store = OfflineStore(home)
    single = scope_columns(store, SPEC, DATES).sort("as_of", "person_id")
    with cluster.active(dask_session):
        spread = scope_columns(store, SPEC, DATES).sort("as_of", "person_id")
    assert_frame_equal(spread, single)


def test_partitioned_parquet_holds_the_same_frame(
    home: Path, dask_session: Session, tmp_path: Path
) -> None:
    store = OfflineStore(home)
    out = tmp_path / "features.parquet"
    out.write_bytes(b"previous")  # replaced whole, file or folder
    counts = write_features(dask_session, store, SPEC, DATES, "all", out, parts=3)
    parts = sorted(p.name for p in out.iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    written = pl.read_parquet(out / "*.parquet").sort("as_of", "person_id")
    single = collect_features(store, SPEC, DATES, "all").sort("as_of", "person_id")
    assert_frame_equal(written, single)
    assert counts.rows() == single.group_by("as_of").len().sort("as_of").rows()
    for k, name in enumerate(parts):  # each part holds exactly its bucket of persons
        ids = pl.read_parquet(out / name)["person_id"]
        assert set(person_bucket(ids, 3).tolist()) <= {k}
    assert not list(tmp_path.glob(".features.parquet.*"))  # no staging left behind


def test_cli_build_on_a_scheduler_address(
    home: Path, dask_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``RISKCAST_DASK_SCHEDULER=tcp://...``: `riskcast features build` writes the folder."""
    address = dask_session.client.scheduler_info()["address"]
    monkeypatch.setenv("RISKCAST_DASK_SCHEDULER", address)
    out = tmp_path / "frame"
    result = CliRunner().invoke(
        build_app(),
        ["features", "build", "--as-of", "2024-12-31", "--out", str(out), "--home", str(home)],
    )
    assert result.exit_code == 0, result.output
    monkeypatch.delenv("RISKCAST_DASK_SCHEDULER")
    single_file = tmp_path / "single.parquet"
    args = ["features", "build", "--as-of", "2024-12-31", "--out", str(single_file)]
    result = CliRunner().invoke(build_app(), [*args, "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert out.is_dir() and single_file.is_file()
    assert_frame_equal(
        pl.read_parquet(out / "*.parquet").sort("as_of", "person_id"),
        pl.read_parquet(single_file),
    )
    assert not (home / "dask").exists() or not any((home / "dask").iterdir())  # scratch removed


def _online_vectors(home: Path) -> tuple[object, pl.DataFrame]:
    """The current materialisation and every person's vector in it (sorted)."""
    from features.online import SqlOnlineStore

    online = SqlOnlineStore(f"sqlite:///{home / 'riskcast.sqlite'}")
    ids = OfflineStore(home).scan("persons").select("person_id").unique().collect()
    try:
        vectors = online.get_vectors(ids["person_id"].to_list()).drop("written_at")
        return online.current(), vectors.sort("person_id")
    finally:
        online.dispose()


def test_materialize_on_the_cluster_never_gathers_the_frame(
    home: Path, dask_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers build and write their partitions; the driver streams the part files into
    the online store (no gathered frame) and the store equals the single machine's."""
    from features.frames import partition

    monkeypatch.delenv("RISKCAST_DATABASE_URL", raising=False)
    materialize = ["features", "materialize", "--home", str(home), "--as-of", "2025-06-30"]
    single = CliRunner().invoke(build_app(), materialize)
    assert single.exit_code == 0, single.output
    alone = _online_vectors(home)

    def gathered(*args: object, **kwargs: object) -> None:
        raise AssertionError("materialize gathered the frame in the driver")

    monkeypatch.setattr(partition, "collect_partitioned", gathered)
    monkeypatch.setenv("RISKCAST_DASK_SCHEDULER", dask_session.client.scheduler_info()["address"])
    spread = CliRunner().invoke(build_app(), materialize)
    assert spread.exit_code == 0, spread.output
    assert "built on 2 Dask workers, written in 4 parts" in " ".join(spread.output.split())
    on_cluster = _online_vectors(home)
    assert str(getattr(on_cluster[0], "as_of", "")) == "2025-06-30"
    assert getattr(on_cluster[0], "rows", 0) == getattr(alone[0], "rows", -1)
    assert "scope_record" in on_cluster[1].columns
    assert_frame_equal(on_cluster[1], alone[1])
    assert (
        "with_record" in spread.output
        and spread.output.split("with_record")[1].split(",")[0]
        == single.output.split("with_record")[1].split(",")[0]
    )  # the same population counts


def test_worker_killed_mid_materialize_leaves_the_previous_one_serving(
    home: Path, doomed_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker dies on every feature task (no retries left): the command fails, the online
    store still serves the previous materialisation; the rerun equals the single machine."""
    monkeypatch.delenv("RISKCAST_DATABASE_URL", raising=False)
    materialize = ["features", "materialize", "--home", str(home), "--as-of"]
    first = CliRunner().invoke(build_app(), [*materialize, "2024-12-31"])
    assert first.exit_code == 0, first.output
    before = _online_vectors(home)
    monkeypatch.setenv("RISKCAST_DASK_SCHEDULER", doomed_session.client.scheduler_info()["address"])
    with killing(doomed_session, "riskcast-features", retries=0):
        failed = CliRunner().invoke(build_app(), [*materialize, "2025-06-30"])
    assert failed.exit_code != 0
    assert isinstance(failed.exception, ClusterError), failed.output
    assert "riskcast-features" in str(failed.exception)
    after_failure = _online_vectors(home)
    assert after_failure[0] == before[0]
    assert_frame_equal(after_failure[1], before[1])
    rerun = CliRunner().invoke(build_app(), [*materialize, "2025-06-30"])
    assert rerun.exit_code == 0, rerun.output
    spread = _online_vectors(home)
    monkeypatch.delenv("RISKCAST_DASK_SCHEDULER")
    single = CliRunner().invoke(build_app(), [*materialize, "2025-06-30"])
    assert single.exit_code == 0, single.output
    alone = _online_vectors(home)
    assert str(getattr(spread[0], "as_of", "")) == "2025-06-30"
    assert_frame_equal(spread[1], alone[1])


def test_a_worker_lost_once_is_retried_with_the_same_result(
    home: Path, doomed_session: Session, tmp_path: Path
) -> None:
    store = OfflineStore(home)
    single = collect_features(store, SPEC, DATES, "all").sort("as_of", "person_id")
    with (
        killing(doomed_session, "riskcast-features", once=tmp_path / "killed"),
        cluster.active(doomed_session),
    ):
        spread = collect_features(store, SPEC, DATES, "all")
    assert (tmp_path / "killed").exists()  # a worker did die mid-build
    assert_frame_equal(spread, single)
