"""Engine creation and the mapping of driver errors onto wirewatch's error kinds.

Errors are mapped by type and SQLSTATE, never by message text:

* retriable: a lost connection, a server shutting down or out of resources, a
  statement cancelled by ``statement_timeout``, a deadlock or serialization
  failure (classes 08, 40, 53, 57, 58 and driver-level connection errors);
* poison for the message that carries the value: data exceptions (class 22),
  integrity violations (23) and program limits (54, e.g. an index row over
  PostgreSQL's ~2.7 kB limit, 54000). psycopg raises class 54 as an
  ``OperationalError``, which used to make such a row retry forever;
* anything else (a missing table, a permission denied) is returned unchanged: a bug.

Every connection carries a ``statement_timeout`` and TCP keepalives, so a
half-open connection or a stuck statement ends in a retriable error well
inside the consumer's ``max.poll.interval`` instead of hanging the sink.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy import exc as sa_exc

from wirewatch.errors import PoisonMessageError, RetriableError

STATEMENT_TIMEOUT_S = 60.0
"""Default per-statement limit; the consumers' max.poll.interval is 300 s."""

POISON_SQLSTATE_CLASSES = {"22": "constraint", "23": "constraint", "54": "limit"}
"""SQLSTATE class -> dead-letter reason: the database can never accept this value."""
RETRIABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
"""Connection, transaction rollback, resources, operator intervention, system errors."""


def connect_args(statement_timeout: float | None = STATEMENT_TIMEOUT_S) -> dict[str, Any]:
    """libpq/psycopg connection parameters: connect timeout, keepalives, and the statement timeout.

    Keepalives (probe after 30 s idle, every 10 s, give up after 3) and
    ``tcp_user_timeout`` (unacknowledged data for 60 s) make the kernel drop
    a half-open connection within about a minute; ``statement_timeout``
    bounds a statement the server is slow to finish. ``None`` or 0: no
    statement limit (migrations, which may rebuild indexes on large tables).
    """
    args: dict[str, Any] = {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 60_000,
    }
    if statement_timeout:
        args["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
    return args


def make_engine(
    url: str, *, statement_timeout: float | None = STATEMENT_TIMEOUT_S, **overrides: Any
) -> Engine:
    options: dict[str, Any] = {
        "pool_pre_ping": True,  # a restarted server leaves dead connections in the pool
        "pool_size": 2,
        "max_overflow": 2,
        "connect_args": connect_args(statement_timeout),
    }
    options.update(overrides)
    return create_engine(url, **options)


def map_error(exc: sa_exc.SQLAlchemyError) -> Exception:
    """The wirewatch error for a SQLAlchemy error: retriable, poison, or the original (a bug)."""
    orig = getattr(exc, "orig", None)
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return RetriableError(f"database connection lost: {orig!r}")
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        klass = sqlstate[:2]
        if klass in POISON_SQLSTATE_CLASSES:
            return PoisonMessageError(POISON_SQLSTATE_CLASSES[klass], f"SQLSTATE {sqlstate}: {orig}")
        if klass in RETRIABLE_SQLSTATE_CLASSES:
            return RetriableError(f"database unavailable (SQLSTATE {sqlstate}): {orig!r}")
    # No SQLSTATE: an error raised by the driver itself (connection refused, NUL in a string).
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return RetriableError(f"database unavailable: {orig if orig is not None else exc!r}")
    if isinstance(exc, sa_exc.DataError | sa_exc.IntegrityError):
        return PoisonMessageError("constraint", str(orig) if orig is not None else str(exc))
    return exc
