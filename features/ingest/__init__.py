"""riskcast ingest: verify a register delivery, apply the contract's controls, version, store.

Public API: `ingest_delivery` (returns an `IngestReport`; raises `DeliveryRefused`) and
`store_status`.
"""

from features.ingest.pipeline import ingest_delivery
from features.ingest.report import IngestReport, TableReport
from features.ingest.status import StoreStatus, store_status

__all__ = ["IngestReport", "StoreStatus", "TableReport", "ingest_delivery", "store_status"]
