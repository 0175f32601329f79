"""Look-alike user names on the real PostgreSQL: refused, and refused when added at once (the
adds are serialised by a table lock, since PostgreSQL cannot compare `name_key` forms itself)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from serving.db import open_engine
from serving.users import UserStore
from tests.integration.conftest import POSTGRES
from tests.user_name_checks import (
    check_look_alikes_added_at_once_make_one_user,
    check_look_alikes_are_refused,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def store(schema: str) -> Iterator[UserStore]:
    url = sa.make_url(POSTGRES).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = open_engine(url.render_as_string(hide_password=False))
    assert engine.dialect.name == "postgresql"
    yield UserStore(engine, "a-pepper-for-the-test")
    engine.dispose()


def test_look_alike_names_are_refused_on_postgres(store: UserStore) -> None:
    check_look_alikes_are_refused(store)


def test_look_alikes_added_at_once_make_one_user_on_postgres(store: UserStore) -> None:
    for _ in range(3):  # the race is narrow: give it several chances
        check_look_alikes_added_at_once_make_one_user(store)
        with store.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM service_users"))
