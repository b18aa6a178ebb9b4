"""Engine creation and the mapping of driver errors onto wirewatch's error kinds.

Errors are mapped by type, never by message text: a lost connection or a
server shutting down is retriable; a value the database can never accept is
poison for the message that carries it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy import exc as sa_exc

from wirewatch.errors import PoisonMessageError, RetriableError


def make_engine(url: str, **overrides: Any) -> Engine:
    options: dict[str, Any] = {
        "pool_pre_ping": True,  # a restarted server leaves dead connections in the pool
        "pool_size": 2,
        "max_overflow": 2,
        "connect_args": {"connect_timeout": 5},
    }
    options.update(overrides)
    return create_engine(url, **options)


def map_error(exc: sa_exc.SQLAlchemyError) -> Exception:
    """The wirewatch error for a SQLAlchemy error: retriable, poison, or the original (a bug)."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return RetriableError(f"database connection lost: {exc.orig!r}")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return RetriableError(f"database unavailable: {exc.orig if hasattr(exc, 'orig') else exc!r}")
    if isinstance(exc, sa_exc.DataError | sa_exc.IntegrityError):
        return PoisonMessageError("constraint", str(exc.orig) if hasattr(exc, "orig") else str(exc))
    return exc
