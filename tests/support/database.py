"""Throwaway test databases on the local PostgreSQL server (used by conftest and the fault tests)."""

from __future__ import annotations

import time

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError


def drop_database(admin_engine: Engine, name: str) -> None:
    """Drop database ``name``, waiting out backends of other roles that are still exiting."""
    # A backend of another role (the reader) may still be exiting after its client closed;
    # WITH (FORCE) may not signal it, so give it a moment instead of failing the test.
    for attempt in range(20):
        try:
            with admin_engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == 19:
                raise
            time.sleep(0.25)
