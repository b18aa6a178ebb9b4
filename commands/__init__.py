"""The composition root: the ``wirewatch`` command line.

The only package that imports the stages. Each subcommand imports its stage
lazily, so ``wirewatch lag`` never loads torch and ``wirewatch poll`` never
loads SQLAlchemy.
"""
