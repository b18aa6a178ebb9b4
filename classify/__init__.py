"""The classifier stage: tags raw articles with violence categories.

``labels`` holds the plain data types, ``model`` the transformer (the only
module importing torch/transformers), ``train``/``evaluate``/``keywords`` the
offline tools, ``worker`` the Kafka batch handler and ``command`` the CLI.
"""
