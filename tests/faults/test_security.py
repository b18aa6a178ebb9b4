"""Security basics: the sink's database role writes only its tables; credentials never reach the logs.

The role ``wirewatch_sink`` is created by ``deploy/local/postgres.sh`` (LOGIN,
password ``wirewatch_sink``, owning nothing) and granted its tables by
migration 0002; the test skips, saying so, on a server without the role.
Leaked credentials are also checked after every fault run
(:meth:`Pipeline.assert_no_secrets_logged`); here the error paths that are
most likely to print a connection string are forced on purpose.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from store.repository import count_rows, save_batch
from tests.faults.services import ROOT, base_env
from tests.support.factories import seen, tagged
from tests.support.kafka import produce_raw
from wirewatch.contract import encode

pytestmark = [pytest.mark.faults, pytest.mark.integration]

SINK_ROLE = "wirewatch_sink"


def test_sink_role_writes_its_tables_and_nothing_else(migrated_engine) -> None:  # type: ignore[no-untyped-def]
    with migrated_engine.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": SINK_ROLE}).first():
            pytest.skip(f"role {SINK_ROLE} does not exist: deploy/local/postgres.sh creates it")
    sink = create_engine(migrated_engine.url.set(username=SINK_ROLE, password=SINK_ROLE))
    try:
        first = tagged(seen("a1"))
        edited = tagged(seen("a1", revision=2, text="Edited body."), labels=("extortion",))
        for batch in ([first, tagged(seen("a2"))], [first], [edited]):  # insert, re-delivery, update
            with Session(sink) as session, session.begin():
                save_batch(session, batch)
        with Session(sink) as session:
            assert count_rows(session) == {"articles": 2, "classifications": 3, "events": 3}
        forbidden = (
            "CREATE TABLE sneaky (id int)",
            "DROP TABLE events",
            "ALTER TABLE articles ADD COLUMN sneaky int",
            "TRUNCATE events",
            "UPDATE alembic_version SET version_num = '0001'",
            "DELETE FROM alembic_version",
            "CREATE ROLE sneaky",
            "CREATE SCHEMA sneaky",
            "ALTER ROLE wirewatch_sink CREATEDB",
            "CREATE DATABASE sneaky",
        )
        for statement in forbidden:
            with (
                sink.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
                pytest.raises(ProgrammingError, match=r"permission denied|must be owner"),
            ):
                conn.execute(text(statement))
    finally:
        sink.dispose()


def _run_briefly(env: dict[str, str], role: str, seconds: float) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", role],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)
    try:
        output, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    return output


def test_credentials_stay_out_of_error_logs(kafka_settings, new_topic, new_group) -> None:  # type: ignore[no-untyped-def]
    db_secret, sasl_secret = "db-canary-7f3a9c", "sasl-canary-51be02"
    topic = new_topic("fault.sec")
    produce_raw(kafka_settings, topic, [("a1", encode(tagged(seen("a1"))))])
    env = {
        **base_env(),
        "WIREWATCH_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "WIREWATCH_KAFKA_SASL_USERNAME": "someone",
        "WIREWATCH_KAFKA_SASL_PASSWORD": sasl_secret,
        # Nothing listens on port 1: every write fails and is logged as a retriable database error.
        "WIREWATCH_DATABASE_URL": f"postgresql+psycopg://wirewatch:{db_secret}@127.0.0.1:1/wirewatch",
        "WIREWATCH_STORE_TOPIC": topic,
        "WIREWATCH_STORE_GROUP": new_group("fault-sec"),
        "WIREWATCH_DEAD_LETTER_TOPIC": new_topic("fault.sec.dlq", 1),
        "WIREWATCH_LOG_LEVEL": "DEBUG",
    }
    outage = _run_briefly(env, "store", 12)
    assert "database unavailable" in outage, outage[-3000:]
    bad_config = subprocess.run(
        [sys.executable, "-m", "commands.cli", "store"],
        cwd=ROOT,
        env={**env, "WIREWATCH_METRICS_PORT": "not-a-port"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_config.returncode != 0 and "WIREWATCH_METRICS_PORT" in bad_config.stderr
    json_logs = _run_briefly({**env, "WIREWATCH_LOG_FORMAT": "json"}, "store", 8)
    for output in (outage, bad_config.stdout + bad_config.stderr, json_logs):
        assert db_secret not in output
        assert sasl_secret not in output
