"""What the service holds while it runs: the champion model, stores, users, catalogue.

`load_state` is called by the app's lifespan. Failures to load the model or the stores are
kept as messages (scoring answers 503 with them) so that health checks stay up.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Unpack

import polars as pl
import sqlalchemy as sa

from riskcast.errors import RiskcastError
from serving.db import open_engine
from serving.interventions import InterventionCatalogue, load_interventions
from serving.settings import ServingSettings
from serving.users import UserStore
from training.model import RiskModel

if TYPE_CHECKING:
    from fairness.ledger import Ledger
    from features.frames.scope import PopulationScope
    from serving.access_log import EntryFields
    from serving.bookkeeper import BookKeeper
    from serving.metrics import AppMetrics
    from serving.scorebook import ScoreBook

log = logging.getLogger("riskcast.serving")


class VectorStore(Protocol):
    def get_vectors(self, ids: list[str]) -> pl.DataFrame: ...

    def get_columns(self, columns: list[str], ids: list[str] | None = None) -> pl.DataFrame: ...

    def current(self) -> object | None: ...


class AccessLogWriter(Protocol):
    def append(self, **entry: Unpack[EntryFields]) -> Any: ...


@dataclass
class PersonDirectory:
    """Where each person belongs (region, district): from the register's persons table."""

    frame: pl.DataFrame  # person_id, region, district
    _index: dict[str, tuple[str, str | None]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {r[0]: (r[1], r[2]) for r in self.frame.iter_rows()}

    def units(self, ids: list[str]) -> dict[str, tuple[str, str | None]]:
        return {i: self._index[i] for i in ids if i in self._index}

    def members(self, region: str, district: str | None) -> list[str]:
        rows = self.frame.filter(pl.col("region") == region)
        if district is not None:
            rows = rows.filter(pl.col("district") == district)
        return rows["person_id"].to_list()


def load_directory(home: Path) -> PersonDirectory:
    from features.store.offline import OfflineStore

    persons = OfflineStore(home).scan("persons")
    names = persons.collect_schema().names()
    if "_valid_to" in names:
        persons = persons.filter(pl.col("_valid_to").is_null())
    frame = persons.select(
        pl.col("person_id").cast(pl.String),
        pl.col("region").cast(pl.String),
        pl.col("district").cast(pl.String),
    ).collect()
    return PersonDirectory(frame.unique("person_id", keep="last"))


@dataclass
class LoadedModel:
    model: RiskModel
    name: str
    version: str
    alias: str
    card: str | None
    scope: PopulationScope
    """Who this version may score: its population of validity (everyone else is answered
    `outside_population`)."""


def load_champion(settings: ServingSettings, name: str) -> LoadedModel:
    """The version behind the alias (default ``champion``) with its model card."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from training.model import ARTIFACT_KEY
    from training.tracking import tracking_session, tracking_uri

    uri = settings.mlflow_tracking_uri or tracking_uri(settings.home)
    with tracking_session(uri) as client:
        try:
            mv = client.get_model_version_by_alias(name, settings.model_alias)
        except MlflowException as exc:
            raise RiskcastError(
                f"no version of model {name!r} has the alias {settings.model_alias!r}: "
                "promote one through the fairness gate (`riskcast promote`)"
            ) from exc
        target = Path(tempfile.mkdtemp(prefix="riskcast-serve-"))
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{mv.version}", dst_path=str(target)
        )
    folder = Path(local) / "artifacts" / ARTIFACT_KEY
    card_path = folder / "model_card.md"
    card = card_path.read_text("utf-8") if card_path.exists() else None
    model = RiskModel.load(folder)
    scope = model.scope
    if scope is None:
        raise RiskcastError(
            f"{name} version {mv.version} declares no population of validity (trained before "
            "scopes existed): it cannot be served; train and promote a new version"
        )
    return LoadedModel(model, name, str(mv.version), settings.model_alias, card, scope)


@dataclass
class ServiceState:
    settings: ServingSettings
    engine: sa.Engine
    users: UserStore
    catalogue: InterventionCatalogue
    model: LoadedModel | None = None
    model_error: str | None = "the model has not been loaded yet"
    store: VectorStore | None = None
    directory: PersonDirectory | None = None
    store_error: str | None = "the stores have not been opened yet"
    access_log: AccessLogWriter | None = None
    ledger: Ledger | None = None  # the promotion ledger (same database as the access log)
    metrics: AppMetrics | None = None  # set by the app that opened this state
    book_keeper: BookKeeper | None = None  # every person scored once, in the background
    closers: list[Any] = field(default_factory=list)

    def book(self) -> ScoreBook | None:
        """The score book of the champion on the current materialisation, if ready."""
        return None if self.book_keeper is None else self.book_keeper.book()

    def close(self) -> None:
        for close in self.closers:
            try:
                close()
            except Exception:  # best effort on shutdown
                log.exception("closing %r failed", close)
        self.engine.dispose()


def open_state(settings: ServingSettings) -> ServiceState:
    """Open everything the service needs; model and store failures are kept, not raised."""
    if settings.database_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)
    engine = open_engine(settings.effective_database_url)
    state = ServiceState(
        settings=settings,
        engine=engine,
        users=UserStore(engine, settings.token_pepper.get_secret_value()),
        catalogue=load_interventions(),
    )
    try:
        name = settings.resolved_model_name()
        state.model = load_champion(settings, name)
        state.catalogue.check_features(state.model.model.features)
        state.model_error = None
        log.info("serving %s version %s", name, state.model.version)
    except RiskcastError as exc:
        state.model_error = str(exc)
    except Exception as exc:  # registry unreachable, broken artifact...
        log.exception("loading the champion failed")
        state.model_error = f"the champion model could not be loaded: {exc}"
    try:
        from features.online.store import open_online_store

        online = open_online_store(settings.store_settings())
        state.closers.append(online.dispose)
        state.store = online
        state.directory = load_directory(settings.home)
        state.store_error = None
    except RiskcastError as exc:
        state.store_error = f"the feature stores are not available: {exc}"
    if settings.scorebook and state.model is not None and state.store is not None:
        from serving.bookkeeper import BookKeeper

        assert state.directory is not None
        state.book_keeper = BookKeeper(
            state.model.model,
            state.model.version,
            state.model.scope,
            state.store,
            state.directory.frame,
            check_seconds=settings.scorebook_check_seconds,
        )
        state.book_keeper.book()  # starts the first build
    try:
        from serving.access_log import open_access_log, same_database

        access_log = open_access_log(settings.store_settings(), chain=settings.chain)
        same_database(engine, access_log)  # decisions commit in their log entry's transaction
        access_log.group_commit()  # concurrent requests share a commit, each waits for its own
        state.closers.append(access_log.dispose)
        state.access_log = access_log
    except ImportError:
        state.access_log = None
    try:
        from fairness.ledger import open_ledger

        ledger = open_ledger(settings.store_settings(), chain=settings.chain)
        state.closers.append(ledger.dispose)
        state.ledger = ledger
    except RiskcastError as exc:
        log.error("the promotion ledger could not be opened: %s", exc)
    return state
