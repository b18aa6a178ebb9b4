"""The sink stage: tagged articles from Kafka into PostgreSQL, idempotently.

Only this package imports SQLAlchemy. ``tables`` declares the schema,
``repository`` writes rows inside a caller-owned transaction, ``sink`` owns the
consume -> transaction -> commit-offsets loop, ``migrations`` is Alembic.
"""
