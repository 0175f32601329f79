"""Benchmark (issue section 7, first part): one explained score over HTTP on loopback against
`mlflow models serve` of the same champion (scores only), side by side in the same run.

    RISKCAST_HOME=var/bench .venv/bin/python experiments/demo.py --persons 20000 --no-serve
    .venv/bin/python experiments/bench_service.py --home var/bench/demo
    .venv/bin/python experiments/bench_service.py --prepare 20000      # runs the demo itself

Given a prepared home (a promoted `champion`, a materialized online store), it creates an
officer through `riskcast users add` (for the most populous region), starts `riskcast serve` and
`mlflow models serve -m models:/recidivism-risk@champion --env-manager local` (tracking URI =
the home's ``mlflow.db``) on free loopback ports, each in a process of its own, and drives both
with a load generator that runs in another process (``--phase load``: asyncio + httpx, a fixed
number of concurrent workers, bounded by ``--seconds`` and ``--requests`` per level, after a
short warm-up that is not recorded). Each request asks for one person: ``POST /v1/scores`` with
``{"ids": [id], "purpose": ...}`` (explained score, access-logged) for riskcast, and
``POST /invocations`` with that person's online-store vector as one ``dataframe_split`` row for
MLflow. Ids cycle through persons of the officer's region that have a vector. Both servers run
one worker process (``--workers``). The table gives p50/p99 latency and requests/s per
concurrency and the riskcast/MLflow requests/s ratio, against the targets (p99 <= 15 ms at
concurrency 8; >= 2x the peer's requests/s). Servers are stopped on exit, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from riskcast.names import CHAMPION, PERSON_MODEL

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
MODEL = PERSON_MODEL
LEVELS = (1, 8, 32)
TARGET_P99_MS = 15.0
TARGET_P99_LEVEL = 8
TARGET_RATIO = 2.0

_children: list[subprocess.Popen[bytes]] = []


# --------------------------------------------------------------------------- load generator


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (``q`` in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


async def _load(
    spec: dict[str, Any], concurrency: int, seconds: float, requests: int, warmup: int
) -> dict[str, Any]:
    import httpx

    url: str = spec["url"]
    headers = {"Content-Type": "application/json", **spec.get("headers", {})}
    bodies = [b.encode() for b in spec["bodies"]]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    issued = 0

    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def one(i: int) -> tuple[float, int | str]:
            started = time.perf_counter()
            try:
                reply = await client.post(url, content=bodies[i % len(bodies)], headers=headers)
                await reply.aread()
                status: int | str = reply.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            return time.perf_counter() - started, status

        async def warm(worker: int) -> None:
            for i in range(warmup):
                await one(worker * 7919 + i)

        await asyncio.gather(*(warm(w) for w in range(concurrency)))

        deadline = time.perf_counter() + seconds

        async def work() -> None:
            nonlocal issued
            while issued < requests and time.perf_counter() < deadline:
                i = issued
                issued += 1
                elapsed, status = await one(i)
                latencies.append(elapsed)
                statuses[str(status)] = statuses.get(str(status), 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(concurrency)))
        wall = time.perf_counter() - started

    ordered = sorted(latencies)
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "seconds": wall,
        "rps": len(latencies) / wall if wall > 0 else 0.0,
        "p50_ms": _percentile(ordered, 50) * 1000,
        "p99_ms": _percentile(ordered, 99) * 1000,
        "max_ms": (ordered[-1] * 1000) if ordered else float("nan"),
        "statuses": statuses,
    }


def load_phase(options: argparse.Namespace) -> None:
    spec = json.loads(Path(options.spec).read_text(encoding="utf-8"))
    result = asyncio.run(
        _load(spec, options.concurrency, options.seconds, options.requests, options.warmup)
    )
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- orchestration


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT, then SIGTERM, then SIGKILL to the process group this script started."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue


def _cleanup() -> None:
    while _children:
        _stop(_children.pop())


def _on_signal(signum: int, _frame: Any) -> None:
    sys.exit(128 + signum)  # runs atexit: the servers are stopped


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    proc = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    handle.close()
    _children.append(proc)
    return proc


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    detail = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url}: server exited with code {proc.returncode}; see {log}")
        try:
            reply = httpx.get(url, timeout=5.0)
            if reply.status_code == 200:
                return
            detail = f"{reply.status_code} {reply.text[:200]}"
        except httpx.TransportError as exc:
            detail = str(exc)
        time.sleep(0.5)
    sys.exit(f"{url} not ready after {timeout:.0f} s ({detail}); see {log}")


def prepare(persons: int, base: Path) -> Path:
    env = {**os.environ, "RISKCAST_HOME": str(base)}
    command = [sys.executable, str(REPO / "experiments" / "demo.py")]
    command += ["--persons", str(persons), "--no-serve"]
    print("$ RISKCAST_HOME=" + str(base) + " " + " ".join(command), flush=True)
    subprocess.run(command, env=env, cwd=REPO, check=True)
    return base / "demo"


def create_officer(home: Path, region: str, env: dict[str, str]) -> str:
    from experiments.demo import _user_fields

    name = f"bench-officer-{int(time.time())}-{os.getpid()}"
    args = [_bin("riskcast"), "users", "add", name, "--role", "officer", "--region", region]
    result = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    fields = _user_fields(result.stdout)
    if result.returncode != 0 or fields is None:
        sys.exit(
            f"`riskcast users add` failed ({result.returncode}): {result.stdout}{result.stderr}"
        )
    return fields["token"]


def persons_with_vectors(home: Path, region: str, count: int) -> tuple[list[str], list[str], Any]:
    """Up to ``count`` persons of ``region`` with an online vector: ids, feature names, rows."""
    import polars as pl

    from features.online.store import open_online_store
    from riskcast.settings import Settings
    from serving.state import load_directory

    members = load_directory(home).frame.filter(pl.col("region") == region)
    ids = sorted(members["person_id"].to_list())
    store = open_online_store(Settings(home=home, database_url=None))
    current = store.current()
    if current is None:
        sys.exit(f"the online store under {home} is empty (run `riskcast features materialize`)")
    features = list(current.features)
    frames = []
    found = 0
    for begin in range(0, len(ids), 1000):
        vectors = store.get_vectors(ids[begin : begin + 1000])
        frames.append(vectors)
        found += vectors.height
        if found >= count:
            break
    vectors = pl.concat(frames).head(count)
    if vectors.height == 0:
        sys.exit(f"no person of region {region} has a vector in the online store")
    return vectors["person_id"].to_list(), features, vectors


def run_load(spec_file: Path, level: int, options: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", "load"]
    command += ["--spec", str(spec_file), "--concurrency", str(level)]
    command += ["--seconds", str(options.seconds), "--requests", str(options.requests)]
    command += ["--warmup", str(options.warmup)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"load generator failed ({result.returncode}): {result.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def server_seconds(base_url: str) -> tuple[float, float]:
    """(sum, count) of riskcast's own request durations for ``POST /v1/scores`` (/metrics)."""
    import httpx

    total = count = 0.0
    for line in httpx.get(f"{base_url}/metrics", timeout=10).text.splitlines():
        if 'route="/v1/scores"' in line and 'method="POST"' in line:
            if line.startswith("riskcast_http_request_duration_seconds_sum"):
                total = float(line.rsplit(" ", 1)[1])
            elif line.startswith("riskcast_http_request_duration_seconds_count"):
                count = float(line.rsplit(" ", 1)[1])
    return total, count


def _ok(row: dict[str, Any]) -> str:
    bad = {k: v for k, v in row["statuses"].items() if k != "200"}
    return "all 200" if not bad else ", ".join(f"{k}: {v}" for k, v in sorted(bad.items()))


def report(results: dict[str, dict[int, dict[str, Any]]], context: dict[str, Any]) -> str:
    lines = [
        "| concurrency | riskcast p50 ms | riskcast p99 ms | riskcast req/s | "
        "mlflow p50 ms | mlflow p99 ms | mlflow req/s | req/s ratio | riskcast n | mlflow n |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in LEVELS:
        r, m = results["riskcast"][level], results["mlflow"][level]
        ratio = r["rps"] / m["rps"] if m["rps"] else float("nan")
        lines.append(
            f"| {level} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['rps']:.0f} | "
            f"{m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['rps']:.0f} | {ratio:.2f}x | "
            f"{r['requests']} ({_ok(r)}) | {m['requests']} ({_ok(m)}) |"
        )
    lines.append("")
    lines.append(
        "riskcast in-app mean time per POST /v1/scores (its /metrics histogram, includes "
        "the warm-up): "
        + ", ".join(
            f"c={lv}: {results['riskcast'][lv].get('server_mean_ms', float('nan')):.1f} ms"
            for lv in LEVELS
        )
    )
    at = results["riskcast"][TARGET_P99_LEVEL]
    ratios = [
        results["riskcast"][lv]["rps"] / results["mlflow"][lv]["rps"]
        for lv in LEVELS
        if results["mlflow"][lv]["rps"]
    ]
    p99_ok = at["p99_ms"] <= TARGET_P99_MS
    ratio_ok = bool(ratios) and min(ratios) >= TARGET_RATIO
    lines += [
        "",
        f"- target p99 <= {TARGET_P99_MS:.0f} ms at concurrency {TARGET_P99_LEVEL}: "
        f"{at['p99_ms']:.1f} ms -> {'MET' if p99_ok else 'MISSED'}",
        f"- target >= {TARGET_RATIO:.0f}x the peer's requests/s: "
        + ", ".join(f"c={lv}: {x:.2f}x" for lv, x in zip(LEVELS, ratios, strict=False))
        + f" -> {'MET' if ratio_ok else 'MISSED'} (all levels)",
        "",
        "context: " + ", ".join(f"{k}={v}" for k, v in context.items()),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--home", type=Path, help="a prepared home (e.g. var/bench/demo)")
    parser.add_argument("--prepare", type=int, metavar="N", help="run the demo with N persons")
    parser.add_argument("--base", type=Path, default=REPO / "var" / "bench-service")
    parser.add_argument("--seconds", type=float, default=10.0, help="bound per level")
    parser.add_argument("--requests", type=int, default=2000, help="bound per level")
    parser.add_argument("--warmup", type=int, default=5, help="unrecorded requests per worker")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of each server")
    parser.add_argument("--persons", type=int, default=500, help="distinct ids to cycle through")
    parser.add_argument("--purpose", default="case_review")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--phase", choices=["load"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.phase == "load":
        load_phase(options)
        return
    if (options.home is None) == (options.prepare is None):
        parser.error("give exactly one of --home DIR or --prepare N")

    atexit.register(_cleanup)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    home = (
        prepare(options.prepare, options.base.resolve())
        if options.prepare is not None
        else options.home.resolve()
    )
    from experiments.demo import most_populous_regions

    env = {**os.environ, "RISKCAST_HOME": str(home)}
    env.pop("RISKCAST_DATABASE_URL", None)
    env.pop("RISKCAST_MODE", None)
    region = most_populous_regions(home, 1)[0]
    token = create_officer(home, region, env)
    ids, features, vectors = persons_with_vectors(home, region, options.persons)
    print(f"home {home}: officer of region {region}, {len(ids)} persons, {len(features)} inputs")

    workdir = Path(tempfile.mkdtemp(prefix="bench-service-"))
    r_port, m_port = free_port(), free_port()
    r_log, m_log = workdir / "riskcast-serve.log", workdir / "mlflow-serve.log"
    uri = f"sqlite:///{home / 'mlflow.db'}"
    m_env = {
        **env,
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_REGISTRY_URI": uri,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    }
    r_cmd = [_bin("riskcast"), "serve", "--host", HOST, "--port", str(r_port)]
    r_cmd += ["--workers", str(options.workers)]
    m_cmd = [_bin("mlflow"), "models", "serve", "-m", f"models:/{MODEL}@{CHAMPION}"]
    m_cmd += ["--env-manager", "local", "-h", HOST, "-p", str(m_port), "-w", str(options.workers)]
    print("$ " + " ".join(r_cmd[-7:]), f"(log {r_log})")
    print("$ MLFLOW_TRACKING_URI=" + uri + " " + " ".join(m_cmd[-10:]), f"(log {m_log})")
    riskcast_proc = start(r_cmd, env, r_log)
    mlflow_proc = start(m_cmd, m_env, m_log)
    wait_ready(riskcast_proc, f"http://{HOST}:{r_port}/readyz", r_log)
    wait_ready(mlflow_proc, f"http://{HOST}:{m_port}/ping", m_log)

    import httpx
    import polars as pl

    rows = vectors.select([pl.col(f).cast(pl.Float64) for f in features]).rows()
    specs: dict[str, dict[str, Any]] = {
        "riskcast": {
            "url": f"http://{HOST}:{r_port}/v1/scores",
            "headers": {"Authorization": f"Bearer {token}"},
            "bodies": [json.dumps({"ids": [i], "purpose": options.purpose}) for i in ids],
        },
        "mlflow": {
            "url": f"http://{HOST}:{m_port}/invocations",
            "bodies": [
                json.dumps({"dataframe_split": {"columns": features, "data": [list(row)]}})
                for row in rows
            ],
        },
    }
    # one checked request each: the explained score, and the same person's score from MLflow
    first: dict[str, Any] = {}
    for name, spec in specs.items():
        headers = {"Content-Type": "application/json", **spec.get("headers", {})}
        reply = httpx.post(str(spec["url"]), content=spec["bodies"][0], headers=headers, timeout=30)
        if reply.status_code != 200:
            sys.exit(f"{name}: {spec['url']} answered {reply.status_code}: {reply.text[:500]}")
        first[name] = reply.json()
    scored = first["riskcast"]["results"][0]
    if scored.get("status") != "scored" or not scored.get("explanation"):
        sys.exit(f"riskcast did not return an explained score: {scored}")
    print(
        f"check {ids[0]}: riskcast p={scored['probability']:.6f} tier={scored['tier']} "
        f"(explained); mlflow {json.dumps(first['mlflow'])[:160]}"
    )

    results: dict[str, dict[int, dict[str, Any]]] = {"riskcast": {}, "mlflow": {}}
    for name, spec in specs.items():
        spec_file = workdir / f"{name}.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        for level in LEVELS:
            before = server_seconds(f"http://{HOST}:{r_port}") if name == "riskcast" else None
            row = run_load(spec_file, level, options)
            if before is not None:  # the service's own time, without client and transport
                after = server_seconds(f"http://{HOST}:{r_port}")
                n = after[1] - before[1]
                row["server_mean_ms"] = (after[0] - before[0]) / n * 1000 if n else float("nan")
            results[name][level] = row
            print(
                f"{name:8} c={level:<3} n={row['requests']:5d} {row['rps']:7.1f} req/s "
                f"p50 {row['p50_ms']:6.1f} ms p99 {row['p99_ms']:6.1f} ms {_ok(row)}"
                + (
                    f" (in-app mean {row['server_mean_ms']:.1f} ms)"
                    if "server_mean_ms" in row
                    else ""
                ),
                flush=True,
            )

    context = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "workers per server": options.workers,
        "bound per level": f"{options.seconds:g} s or {options.requests} requests",
        "warm-up": f"{options.warmup} requests per worker",
        "persons cycled": len(ids),
        "model inputs": len(features),
    }
    table = report(results, context)
    print()
    print(table)
    if options.json:
        options.json.write_text(json.dumps({"results": results, "context": context}, indent=2))
    _cleanup()


if __name__ == "__main__":
    main()
