"""`riskcast evidence-pack VERSION --out DIR [--person ID]`: the documents a public deployer of
a high-risk system must keep, from what riskcast holds, with their sha256 in the ledger.

The heavy parts (MLflow, the stores) are imported when the command runs, so `--help` is fast.
"""

from __future__ import annotations

from pathlib import Path
from time import perf_counter
from typing import Annotated

import typer
from rich.console import Console

from fairness.commands import HomeOption
from riskcast.names import PERSON_MODEL


def register(app: typer.Typer) -> None:
    @app.command("evidence-pack")
    def evidence_pack(
        version: Annotated[str, typer.Argument(help="registered version number")],
        out: Annotated[Path, typer.Option("--out", help="a new (or empty) folder for the pack")],
        person: Annotated[
            str | None,
            typer.Option("--person", help="also export this person's decisions and explanation"),
        ] = None,
        by: Annotated[str, typer.Option("--by", help="who assembles the pack")] = "riskcast",
        role: Annotated[str, typer.Option("--role", help="the role of --by")] = "auditor",
        model_name: Annotated[str, typer.Option("--model", help="registered model name")] = (
            PERSON_MODEL
        ),
        home: HomeOption = None,
    ) -> None:
        """Assemble the evidence pack of VERSION: technical documentation, a draft
        fundamental-rights impact assessment, the post-market monitoring plan (and, with
        --person, one person's decision history with its explanation), each as HTML and JSON,
        a manifest of sha256 digests, and the manifest's sha256 in the ledger."""
        from serving.evidence.build import build_evidence_pack

        started = perf_counter()
        result = build_evidence_pack(
            version, out, person=person, by=by, role=role, model_name=model_name
        )
        console = Console(soft_wrap=True)
        console.print(f"evidence pack of {model_name} v{version}: {result.pack.folder}")
        for f in result.pack.files:
            console.print(f"  {f['path']}  sha256 {f['sha256'][:16]}…", highlight=False)
        for gap in result.pack.gaps:
            console.print(f"[yellow]not on record:[/] {gap}", highlight=False)
        console.print(f"manifest sha256: {result.pack.sha256}", highlight=False)
        console.print(
            f"recorded in the ledger: seq {result.entry.seq} (kind {result.entry.kind}); "
            f"built in {perf_counter() - started:.1f} s",
            highlight=False,
        )
