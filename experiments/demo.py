"""`make demo`: the main job end to end on the embedded defaults, through the real CLI.

Simulates a delivery (with a few injected bad rows so the ingest report shows the quarantine),
ingests it, builds point-in-time features, materializes the online store, reads a few vectors
back, trains (a few Optuna trials; MLflow run + `challenger` version), audits the challenger,
promotes it through the fairness gate (an auditor's recorded override if the gate refuses),
then does the same for places (issue 12): trains the street-crime model on the same store
(`riskcast places train`), audits and promotes it (`places audit|promote`, the same override
rule) and materializes its forecast for the hotspot API and the map page (`places
materialize`). It verifies the ledger and prints a short summary with the headline metrics, the
timings and the reports' paths. Before the audit it creates five demo users through `riskcast
users add` (an officer for each of the two most populous regions, an auditor, a data scientist
and an admin): an override is made by the demo auditor, proven by its token
(``RISKCAST_TOKEN``). It prints one line per user (``demo user NAME role=ROLE region=REGION
token=TOKEN``), the page URLs (the first
officer's hotspot map among them) and the MLflow UI command (the one `riskcast train` prints),
starts `riskcast serve` on 127.0.0.1:$PORT (default 8000), checks that it answers a demo
officer's `POST /v1/scores` and `GET /v1/hotspots` and keeps serving in the foreground until
Ctrl-C (``--no-serve`` stops after printing).

Files live under ``$RISKCAST_HOME/demo`` (default ``./var/demo``), which is reset at the start
so the demo can be rerun. Every step honours the settings: with ``RISKCAST_DATABASE_URL`` the
online store, users, ledger and access log are in that database, and with
``MLFLOW_TRACKING_URI`` runs and versions are in that MLflow (the production path). Such a
database is not the demo's to reset: it must hold no riskcast tables yet (a fresh database).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import polars as pl
from rich.console import Console
from rich.table import Table

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.common import simulate_args
from features.frames.scope import SCOPE_PREFIX
from features.online.store import open_online_store
from riskcast.db import make_engine, masked
from riskcast.names import CHALLENGER, CHAMPION, PERSON_MODEL, PLACES_MODEL
from riskcast.settings import Settings, read_settings
from training.tracking import tracking_uri, ui_command

console = Console()

HOST = "127.0.0.1"


def riskcast() -> str:
    return str(Path(sys.executable).parent / "riskcast")


def run(step: str, *args: str, env: dict[str, str], ok_codes: tuple[int, ...] = (0,)) -> float:
    """Run one riskcast command as a user would, echoing it; fail loudly if it fails."""
    command = [riskcast(), *args]
    console.rule(f"[bold]{step}")
    console.print("$ riskcast " + " ".join(args), style="dim")
    started = time.perf_counter()
    result = subprocess.run(command, env=env, check=False)
    if result.returncode not in ok_codes:
        console.print(f"[red]step '{step}' failed with exit code {result.returncode}")
        sys.exit(result.returncode)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--trials", type=int, default=4, help="Optuna trials of the training")
    parser.add_argument(
        "--place-trials",
        type=int,
        default=None,
        help="Optuna trials of the places training (default: --trials)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT") or os.environ.get("RISKCAST_PORT") or 8000),
        help="port of `riskcast serve` (default $PORT, else 8000)",
    )
    parser.add_argument(
        "--no-serve",
        action="store_true",
        help="stop after printing the users and URLs instead of serving",
    )
    options = parser.parse_args()

    configured = read_settings()  # RISKCAST_HOME (else var), RISKCAST_DATABASE_URL, MLflow
    home = configured.home.resolve() / "demo"
    settings = configured.model_copy(update={"home": home})
    refuse_used_database(settings)
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    # every step reads the same settings: only the home is the demo's own
    env = {**os.environ, "RISKCAST_HOME": str(home)}
    os.environ["RISKCAST_HOME"] = str(home)  # this process reads them too (tracking, stores)
    env.pop("RISKCAST_MODE", None)  # the demo runs in dev mode, with the development pepper
    delivery = home / "deliveries" / "2025-12"
    features_file = home / "features" / "with_record-2024-12-31.parquet"
    report_file = home / "ingest-report.json"

    timings = {
        "simulate": run(
            "1. simulate national registers",
            *simulate_args(delivery, options.persons, options.seed),
            "--corrupt-rate",
            "0.005",
            env=env,
        ),
        "ingest": run(
            "2. ingest the delivery",
            "ingest",
            str(delivery),
            "--report-json",
            str(report_file),
            env=env,
        ),
        "features build": run(
            "3. point-in-time features as of 2024-12-31 (persons with a record)",
            "features",
            "build",
            "--as-of",
            "2024-12-31",
            "--population",
            "with_record",
            "--out",
            str(features_file),
            env=env,
        ),
        "materialize": run(
            "4. materialize the latest vectors into the online store",
            "features",
            "materialize",
            "--as-of",
            "2025-12-31",
            env=env,
        ),
        "train": run(
            "5. train: out-of-time tuning, calibration, baselines, MLflow run + registry",
            "train",
            "--trials",
            str(options.trials),
            "--truth",
            str(delivery.parent / f"{delivery.name}_truth"),
            env=env,
        ),
    }
    version = challenger_version(home, PERSON_MODEL)
    regions = most_populous_regions(home, 2)
    users = create_users(regions, env)
    auditor = next(u for u in users if u["role"] == "auditor")
    timings["audit"] = run(
        "7. audit the challenger on its out-of-time test snapshot (groups, intersections, CIs)",
        "audit",
        version,
        "--by",
        "demo",
        env=env,
    )
    timings.update(
        promote_or_override(
            "8", PERSON_MODEL, ["promote", version], version, auditor=auditor, env=env
        )
    )
    place_trials = options.place_trials or options.trials
    timings["places train"] = run(
        "9. places: train street-crime (weekly incidents per map cell; rolling-origin tuning, "
        "baselines, MLflow run + registry)",
        "places",
        "train",
        "--config",
        str(demo_places_config(home)),
        "--trials",
        str(place_trials),
        "--truth",
        str(delivery.parent / f"{delivery.name}_truth"),
        env=env,
    )
    place_version = challenger_version(home, PLACES_MODEL)
    timings["places audit"] = run(
        "10. places: audit the challenger (PAI, deviance, exposure by district, feedback loop)",
        "places",
        "audit",
        "--version",
        place_version,
        "--by",
        "demo",
        env=env,
    )
    timings.update(
        promote_or_override(
            "11",
            PLACES_MODEL,
            ["places", "promote", "--version", place_version],
            place_version,
            auditor=auditor,
            env=env,
            prefix="places ",
        )
    )
    timings["places materialize"] = run(
        "12. places: materialize the champion's forecast for the hotspot API and the map",
        "places",
        "materialize",
        env=env,
    )
    timings["ledger"] = run("13. verify the promotion ledger", "ledger", "verify", env=env)
    summarize(settings, delivery, features_file, report_file, timings)
    headline(home)
    console.print(f"fairness reports: [bold]{home / 'reports' / f'{PERSON_MODEL}-v{version}'}[/]")
    console.print(
        f"places audit report: [bold]{home / 'reports' / f'{PLACES_MODEL}-v{place_version}'}[/]"
    )

    base_url = f"http://{HOST}:{options.port}"
    print_access(users, base_url, home)
    if options.no_serve:
        return
    serve(home, users, regions[0], base_url, options.port, env)


DEMO_PLACES = {
    "origins": {"test_weeks": 8, "train_weeks": 48, "train_every_weeks": 4},
    "folds": {"n_folds": 1, "valid_origins": 3},
    "search": {
        "num_boost_round": 150,
        "early_stopping_rounds": 15,
        "startup_trials": 2,
        "pruning_warmup_trials": 1,
        "max_train_rows": 60_000,
    },
    "baselines": {"kde_bandwidths_km": [0.5, 0.8], "kde_weeks": [13], "hawkes_taus_weeks": [2]},
    "bootstrap": 500,
}
"""What the demo shortens in the places training (configs/places_training.yaml keeps the rest):
fewer test weeks and training origins, one fold, shorter boosting, fewer baseline settings;
the default file's two years of origins and three folds take far longer than a demo should."""


def demo_places_config(home: Path) -> Path:
    """The repository's places training file with `DEMO_PLACES` laid over it, in the home."""
    import yaml

    source = Path(__file__).resolve().parents[1] / "configs" / "places_training.yaml"
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    for key, value in DEMO_PLACES.items():
        if isinstance(value, dict):
            config[key] = {**config.get(key, {}), **value}
        else:
            config[key] = value
    target = home / "places_training.yaml"
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target


def promote_or_override(
    step: str,
    model: str,
    command: list[str],
    version: str,
    *,
    auditor: dict[str, str],
    env: dict[str, str],
    prefix: str = "",
) -> dict[str, float]:
    """Promote ``version`` of ``model`` through its gate; if the gate refuses (a first model
    has no champion to beat but must still pass the absolute checks), the demo auditor
    overrides with a written reason, proven by its token. Either way the demo ends with a
    champion: the serving pages need one. The timings of the steps that ran."""
    timings = {
        f"{prefix}promote": run(
            f"{step}. {prefix}promote through the gate (moves `champion` only on pass; refusals "
            "are recorded)",
            *command,
            "--by",
            "demo",
            "--reason",
            "demo: first model on this delivery",
            env=env,
            ok_codes=(0, 1),
        )
    }
    if champion_version(home_of(env), model) != version:
        timings[f"{prefix}override"] = run(
            f"{step}b. the gate refused: an auditor overrides, with a written reason "
            "(recorded as such)",
            *command,
            "--override",  # recorded under the token's user, the demo auditor
            "--reason",
            "demo only: refusal reviewed, the model is not used on real people",
            env={**env, "RISKCAST_TOKEN": auditor["token"]},  # the auditor proves who it is
        )
    if champion_version(home_of(env), model) != version:
        console.print(f"[red]{model} v{version} is not the champion after the override")
        sys.exit(1)
    return timings


def home_of(env: dict[str, str]) -> Path:
    return Path(env["RISKCAST_HOME"])


RISKCAST_TABLES = (
    "service_users",
    "feature_materializations",
    "ledger_entries",
    "access_log",
    "hotspot_materializations",
    "hotspot_forecasts",
)


def refuse_used_database(settings: Settings) -> None:
    """With ``RISKCAST_DATABASE_URL`` the demo writes into that database, which it cannot reset
    as it resets its home: stop at once (one line) if riskcast has used it already."""
    if settings.database_url is None:
        return
    engine = make_engine(settings.database_url, what="demo database")
    try:
        import sqlalchemy as sa

        try:
            used = set(sa.inspect(engine).get_table_names()) & set(RISKCAST_TABLES)
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            console.print(f"[red]cannot reach {masked(settings.database_url)}: {reason}")
            sys.exit(1)
    finally:
        engine.dispose()
    if used:
        console.print(
            f"[red]{masked(settings.database_url)} already holds riskcast tables "
            f"({', '.join(sorted(used))}): the demo needs a fresh database (RISKCAST_DATABASE_URL)"
        )
        sys.exit(1)


# (name, role, index of the region among the most populous ones, for officers)
DEMO_USERS: tuple[tuple[str, str, int | None], ...] = (
    ("officer-1", "officer", 0),
    ("officer-2", "officer", 1),
    ("auditor", "auditor", None),
    ("data-scientist", "data_scientist", None),
    ("admin", "admin", None),
)


def most_populous_regions(home: Path, count: int) -> list[str]:
    """The ``count`` regions with the most persons in the ingested register (largest first)."""
    from serving.state import load_directory

    sizes = load_directory(home).frame.group_by("region").len().sort(["len", "region"])
    regions = [str(r) for r in reversed(sizes["region"].to_list()) if r is not None]
    if len(regions) < count:
        console.print(f"[red]the register has {len(regions)} region(s), the demo needs {count}")
        sys.exit(1)
    return regions[:count]


def create_users(regions: list[str], env: dict[str, str]) -> list[dict[str, str]]:
    """Create the demo users through `riskcast users add`; their tokens come from its output."""
    console.rule("[bold]6. demo users (`riskcast users add`; the tokens are shown only now)")
    users: list[dict[str, str]] = []
    for name, role, index in DEMO_USERS:
        args = ["users", "add", f"demo-{name}", "--role", role]
        if index is not None:
            args += ["--region", regions[index]]
        console.print("$ riskcast " + " ".join(args), style="dim")
        result = subprocess.run(
            [riskcast(), *args], env=env, check=False, capture_output=True, text=True
        )
        fields = _user_fields(result.stdout)
        if result.returncode != 0 or fields is None:
            console.print(f"[red]`riskcast users add` failed (exit code {result.returncode})")
            console.print(result.stdout + result.stderr, markup=False, highlight=False)
            sys.exit(result.returncode or 1)
        users.append(fields)
    return users


def _user_fields(output: str) -> dict[str, str] | None:
    """``user NAME role=R region=G token=T`` (the line `riskcast users add` prints) as a dict."""
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "user":
            fields = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
            if {"role", "region", "token"} <= fields.keys():
                return {"name": parts[1], **fields}
    return None


def print_access(users: list[dict[str, str]], base_url: str, home: Path) -> None:
    for u in users:
        # plain print: one exact, unwrapped line per user, whatever the terminal's width
        print(f"demo user {u['name']} role={u['role']} region={u['region']} token={u['token']}")
    print(f"login (paste a token):         {base_url}/login")
    print(f"officer list:                  {base_url}/ui/list")
    officer = next((u for u in users if u["role"] == "officer"), None)
    if officer is not None:  # the first officer's region (choose a purpose on the page)
        print(f"hotspot map ({officer['name']}): {base_url}/ui/map?region={officer['region']}")
    print(f"auditor view:                  {base_url}/ui/audit")
    print(f"API docs:                      {base_url}/docs")
    print(f"metrics:                       {base_url}/metrics")
    print(f"MLflow UI:                     {ui_command(tracking_uri(home), home)}")
    sys.stdout.flush()


def serve(
    home: Path,
    users: list[dict[str, str]],
    region: str,
    base_url: str,
    port: int,
    env: dict[str, str],
) -> None:
    """`riskcast serve` in the foreground, after checking it answers a demo officer."""
    console.rule(f"[bold]14. serve on {base_url} (Ctrl-C stops)")
    args = ["serve", "--host", HOST, "--port", str(port)]
    console.print("$ riskcast " + " ".join(args), style="dim")
    server = subprocess.Popen([riskcast(), *args], env=env)
    try:
        check_service(server, home, users[0], region, base_url)
        code = server.wait()
    except KeyboardInterrupt:
        _stop(server, interrupted=True)
        console.print("demo service stopped")
        return
    except BaseException:
        _stop(server)
        raise
    if code != 0:
        console.print(f"[red]`riskcast serve` ended with exit code {code}")
        sys.exit(code)


def _stop(server: subprocess.Popen[bytes], *, interrupted: bool = False) -> int:
    """End the server: after a Ctrl-C it got the SIGINT from the terminal too, so first let it
    shut down on its own; otherwise (or if it lingers) SIGINT, then SIGTERM, then SIGKILL."""
    signals = [None] if interrupted else []
    for sig in [*signals, signal.SIGINT, signal.SIGTERM, signal.SIGKILL]:
        if server.poll() is not None:
            break
        if sig is not None:
            server.send_signal(sig)
        try:
            server.wait(timeout=10)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):  # lingering, or Ctrl-C again
            continue
    return server.wait()


def check_service(
    server: subprocess.Popen[bytes],
    home: Path,
    officer: dict[str, str],
    region: str,
    base_url: str,
    timeout: float = 120.0,
) -> None:
    """Wait for /readyz, then score one person of the officer's region with a purpose."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        while True:
            if server.poll() is not None:
                console.print(
                    f"[red]`riskcast serve` exited with code {server.returncode} before it was "
                    f"ready (is port {base_url.rsplit(':', 1)[1]} already in use?)"
                )
                sys.exit(server.returncode or 1)
            try:
                ready = client.get("/readyz")
                if ready.status_code == 200:
                    break
                detail = ready.text
            except httpx.TransportError as exc:
                detail = str(exc)
            if time.monotonic() > deadline:
                console.print(f"[red]the service was not ready after {timeout:.0f} s: {detail}")
                _stop(server)
                sys.exit(1)
            time.sleep(0.5)
        person = person_in_region(home, region)
        auth = {"Authorization": f"Bearer {officer['token']}"}
        reply = client.post(
            "/v1/scores", json={"ids": [person], "purpose": "case_review"}, headers=auth
        )
        hotspots = client.get(
            "/v1/hotspots",
            params={"region": region, "purpose": "case_review", "top": 3},
            headers=auth,
        )
    if reply.status_code != 200:
        console.print(f"[red]POST /v1/scores answered {reply.status_code}: {reply.text}")
        _stop(server)
        sys.exit(1)
    body = reply.json()
    result = body["results"][0]
    if result["status"] != "scored":
        console.print(f"[red]POST /v1/scores did not score {person}: {result}")
        _stop(server)
        sys.exit(1)
    print(
        f"service check: {officer['name']} (region {region}) POST /v1/scores purpose=case_review "
        f"-> {person}: p={result['probability']:.3f} tier={result['tier']} "
        f"(model v{body['model_version']}, features as of {result['features_as_of']})",
        flush=True,
    )
    if hotspots.status_code != 200:
        console.print(f"[red]GET /v1/hotspots answered {hotspots.status_code}: {hotspots.text}")
        _stop(server)
        sys.exit(1)
    spots = hotspots.json()
    top = ", ".join(f"{c['cell_id']} {c['expected_count']:.2f}" for c in spots["cells"])
    print(
        f"service check: {officer['name']} GET /v1/hotspots region={region} week of "
        f"{spots['week']}: {top} (street-crime v{spots['model_version']})",
        flush=True,
    )


def person_in_region(home: Path, region: str) -> str:
    """A person of ``region`` inside the model's population of validity (the first in id order):
    the service answers everyone else `outside_population`, without a score."""
    from features.frames.definitions import load_spec
    from features.frames.scope import PopulationScope, outside_reasons
    from serving.state import load_directory
    from training.config import load_training_config

    cfg = load_training_config().training
    scope = PopulationScope.of(cfg.population, load_spec(), cfg.min_age)
    members = load_directory(home).frame.filter(pl.col("region") == region)
    store = open_online_store(read_settings())
    ids = sorted(members["person_id"].to_list())
    for start in range(0, len(ids), 500):
        vectors = store.get_vectors(ids[start : start + 500])
        inside = vectors.filter(outside_reasons(vectors, scope).is_null())
        if inside.height:
            return str(inside["person_id"].sort()[0])
    console.print(f"[red]no person of region {region} is inside the model's population")
    sys.exit(1)


def summarize(
    settings: Settings,
    delivery: Path,
    features_file: Path,
    report_file: Path,
    timings: dict[str, float],
) -> None:
    console.rule("[bold]summary")
    report = json.loads(report_file.read_text(encoding="utf-8"))
    totals = {
        k: sum(t[k] for t in report["tables"].values())
        for k in ("rows_in", "accepted", "quarantined", "duplicates_dropped")
    }
    console.print(
        f"ingest [bold]{report['extract_id']}[/]: {totals['rows_in']:,} rows in, "
        f"{totals['accepted']:,} accepted, {totals['quarantined']:,} quarantined, "
        f"{totals['duplicates_dropped']:,} exact duplicates dropped"
    )
    frame = pl.read_parquet(features_file)
    truth = pl.read_parquet(delivery.parent / f"{delivery.name}_truth" / "labels.parquet")
    joined = frame.select("person_id", "as_of").join(truth, on=["person_id", "as_of"])
    label_rate = float(joined["label"].cast(pl.Float64).mean() or 0.0)  # type: ignore[arg-type]
    mean_p_true = float(joined["p_true"].mean() or 0.0)  # type: ignore[arg-type]
    console.print(
        f"features: {frame.height:,} persons with a record as of 2024-12-31, "
        f"{frame.width - 2} columns; their true 12-month registered re-offence rate "
        f"(simulator truth) is {label_rate:.1%}, mean p_true {mean_p_true:.1%}"
    )
    store = open_online_store(settings)
    sample = frame["person_id"].head(3).to_list()
    vectors = store.get_vectors(sample)
    current = store.current()
    if current is None:
        console.print("[red]the online store is empty after materialize")
        sys.exit(1)
    console.print(
        f"online store ({store.where}): {current.rows:,} vectors of "
        f"{sum(1 for f in current.features if not f.startswith(SCOPE_PREFIX))} model inputs "
        f"(and population membership) as of {current.as_of}, spec {current.spec_hash}"
    )
    table = Table(title="three vectors read back from the online store (first columns)")
    shown = [vectors.columns[0], *vectors.columns[4:10]]
    for column in shown:
        table.add_column(column)
    for row in vectors.select(shown).iter_rows():
        table.add_row(*(str(v) for v in row))
    console.print(table)
    for step, seconds in timings.items():
        console.print(f"  {step:<20} {seconds:6.1f} s")
    console.print(f"  {'total':<20} {sum(timings.values()):6.1f} s")
    console.print(f"files are under {settings.home}")


def _client(home: Path) -> Any:
    """The registry `riskcast train` wrote to (``MLFLOW_TRACKING_URI``, else SQLite in home)."""
    from mlflow import MlflowClient

    uri = tracking_uri(home)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def challenger_version(home: Path, model: str) -> str:
    return str(_client(home).get_model_version_by_alias(model, CHALLENGER).version)


def champion_version(home: Path, model: str) -> str | None:
    try:
        return str(_client(home).get_model_version_by_alias(model, CHAMPION).version)
    except Exception:  # no champion yet
        return None


def headline(home: Path) -> None:
    """The challenger's headline out-of-time metrics, read back from MLflow."""
    client = _client(home)
    version = client.get_model_version_by_alias(PERSON_MODEL, CHALLENGER)
    metrics = client.get_run(str(version.run_id)).data.metrics
    table = Table(title=f"{PERSON_MODEL} v{version.version} ({CHALLENGER}): test snapshot")
    for column in ("scorer", "AUC", "Brier", "ECE", "top-10% capture", "mean p", "observed"):
        table.add_column(column)
    for scorer in ("model", "logistic", "points", "oracle"):
        if f"test.{scorer}.auc" not in metrics:
            continue
        m = {
            k: metrics[f"test.{scorer}.{k}"]
            for k in ("auc", "brier", "ece", "capture_top_10", "mean_predicted", "observed_rate")
        }
        table.add_row(
            scorer,
            f"{m['auc']:.3f}",
            f"{m['brier']:.4f}",
            f"{m['ece']:.4f}",
            f"{m['capture_top_10']:.3f}",
            f"{m['mean_predicted']:.4f}",
            f"{m['observed_rate']:.4f}",
        )
    console.print(table)
    console.print(f"run {version.run_id}")
    print(ui_command(tracking_uri(home), home), flush=True)  # plain print: one unwrapped line


if __name__ == "__main__":
    main()
