"""The feed poller: feed declarations -> HTTP -> parse -> normalise -> ``news.raw.v1``.

Folders follow the data flow: ``config`` (the poller's settings, passed whole),
``feeds`` (what to fetch), ``errors`` (the one error base of fetch and parse),
``fetch`` (how), ``guard`` (which addresses it may connect to), ``redaction``
(secrets out of logged URLs), ``parse`` (bytes -> entries), ``normalize``
(entries -> :class:`ArticleSeen`), ``fulltext`` (optional article pages),
``state`` (what was already published), ``poller`` (schedule + publish),
``health`` (its metrics), ``publisher`` (Kafka or JSON lines) with ``probe``
(is a broker listening) and ``command`` (``wirewatch poll``). This package
imports the shared ``wirewatch`` package and never another stage.
"""
