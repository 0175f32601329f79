"""An admin's erasure over HTTP (`serving.erasure.erase_person`, as `riskcast erase` does),
and what this service process drops at once: the person from its directory, and its score book
(rebuilt without the person; other workers notice the new materialisation within
``scorebook_check_seconds``)."""

from __future__ import annotations

import polars as pl

from features.online.store import SqlOnlineStore
from riskcast.errors import StoreError
from serving.access_log import AccessLog
from serving.erasure import erase_person
from serving.schemas import ErasureResponse
from serving.state import PersonDirectory, ServiceState
from serving.users import User


def erase(state: ServiceState, admin: User, person_id: str, reason: str) -> ErasureResponse:
    """Erase ``person_id`` for ``admin``; 503 (`StoreError`) without the service's access log
    or ledger, 422 naming ``body.reason`` for a reason holding the id."""
    if not isinstance(state.access_log, AccessLog) or state.ledger is None:
        raise StoreError("erasure needs the service's access log and ledger")
    online = state.store if isinstance(state.store, SqlOnlineStore) else None
    done = erase_person(
        person_id,
        by=admin.name,
        role=admin.role.value,
        reason=reason,
        home=state.settings.home,
        engine=state.engine,
        access_log=state.access_log,
        ledger=state.ledger,
        online=online,
        loc=("body",),
    )
    if state.directory is not None:
        kept = state.directory.frame.filter(pl.col("person_id") != person_id.strip())
        state.directory = PersonDirectory(kept)
    if state.book_keeper is not None:
        state.book_keeper.refresh()
    return ErasureResponse(
        pseudonym=done.pseudonym,
        tombstone_added=done.tombstone_added,
        online_vectors=done.online_vectors,
        decisions_blanked=done.decisions_blanked,
        lookup_rows=done.lookup_rows,
        ledger_seq=done.ledger_seq,
    )
