"""Online store: the latest feature vector per entity (SQLite by default, PostgreSQL in prod)."""

from features.online.store import (
    Materialization,
    OnlineStore,
    SqlOnlineStore,
    open_online_store,
)

__all__ = ["Materialization", "OnlineStore", "SqlOnlineStore", "open_online_store"]
