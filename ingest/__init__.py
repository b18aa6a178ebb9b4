"""The feed poller: feed declarations -> HTTP -> parse -> normalise -> ``news.raw.v1``.

Folders follow the data flow: ``feeds`` (what to fetch), ``fetch`` (how),
``guard`` (which addresses it may connect to), ``redaction`` (secrets out of
logged URLs), ``parse`` (bytes -> entries), ``normalize`` (entries -> :class:`ArticleSeen`),
``fulltext`` (optional article pages),
``state`` (what was already published), ``poller`` (schedule + publish) and
``command`` (``wirewatch poll``). This package imports the shared
``wirewatch`` package and never another stage.
"""
