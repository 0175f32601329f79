"""The register simulator: synthetic national register deliveries with a known truth.

`simulate` writes a delivery that follows the extract contract
(`features/contract/register-extracts.md`), the truth beside it (`<out>_truth/`: p_true and
labels per as-of date, latent attributes, every offence, the expected ingest counts, and the
typed `truth-manifest.json` that consumers are given instead of this layout) and,
optionally, a later full delivery with corrections and deletions. The generative model is
described in `features/simulator/README.md`.
"""

from features.simulator.config import SimulatorConfig, load_config
from features.simulator.run import (
    Progress,
    SimulationResult,
    extract_id_for,
    extraction_time,
    second_folder,
    simulate,
    truth_folder,
)

__all__ = [
    "Progress",
    "SimulationResult",
    "SimulatorConfig",
    "extract_id_for",
    "extraction_time",
    "load_config",
    "second_folder",
    "simulate",
    "truth_folder",
]
