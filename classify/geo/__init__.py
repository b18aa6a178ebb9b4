"""Where each article's event happened, from offline gazetteers.

``gazetteer`` builds and caches the name index from PyPI packages, ``locate`` is the pure
resolver, ``locator`` the classifier's entry point, ``evaluate`` the accuracy per level.
(Nothing is imported here, so ``python -m classify.geo.gazetteer`` runs the module once.)
"""
