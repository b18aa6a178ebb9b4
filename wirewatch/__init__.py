"""wirewatch's shared plumbing: what every stage (ingest, classify, store) stands on.

Owns the message contract, topic names, Kafka client factories and the
consume -> process -> commit loop, settings, errors, logging and metrics.
Must never import a stage: the stages import this package, not each other.
"""

__version__ = "0.1.0"
