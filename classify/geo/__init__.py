"""Where each article's event happened, from offline gazetteers (see ``locate.py``)."""

from classify.geo.locate import NOWHERE, Location, country_from_url, locate

__all__ = ["NOWHERE", "Location", "country_from_url", "locate"]
