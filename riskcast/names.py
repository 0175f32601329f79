"""Names that several stages must spell the same way, defined once."""

from __future__ import annotations

PERSON_MODEL = "recidivism-risk"
"""The registered model of the person forecast (the training config's default name)."""

CHAMPION = "champion"
"""The alias of the version the service scores with; set only by the gate."""

CHALLENGER = "challenger"
"""The alias of a newly trained version until the gate has decided on it."""

PLACES_MODEL = "street-crime"
"""The registered model of the places forecast (expected street-crime counts per cell and week)."""
