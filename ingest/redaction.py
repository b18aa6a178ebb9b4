"""Secrets out of URLs before they are logged, raised or stored.

Feed URLs may carry credentials: ``https://user:pass@host/feed`` or a token in
the query (``?apikey=...``, ``&access_token=...``). Every URL the poller puts
in a log line, an exception message or the state's ``last_error`` goes
through :func:`redact_url` (or :func:`redact_text` for free text that may hold
URLs); the userinfo becomes ``***`` and so does the value of any query
parameter whose name looks like a secret. The URL the poller *fetches* is
never changed. :class:`RedactingFilter`, installed on the poller's log
handlers, is the safety net for lines (and tracebacks) written by code that
did not redact, httpx's included.
"""

from __future__ import annotations

import logging
import re
import traceback
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAM = re.compile(
    r"^(?:.*[-_.])?(?:api[-_.]?key|apikey|key|token|access[-_.]?token|auth|authorization|secret|"
    r"password|passwd|pwd|pass|signature|sig|session|sessionid|sid|credential|credentials|code|ticket)$",
    re.I,
)
"""Query parameter names whose values are treated as secrets (``x-amz-signature``, ``client_secret``...)."""
_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")
_URL = re.compile(r"""\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>`]+""")


def redact_url(url: str) -> str:
    """``url`` with its userinfo and secret-looking query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _redact_crudely(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(SECRET_PARAM.match(key) for key, _ in pairs):
            query = urlencode(
                [(key, MASK if SECRET_PARAM.match(key) else value) for key, value in pairs],
                quote_via=quote,
                safe="*",
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Every URL inside ``text`` redacted (the rest of the text is left as it is)."""
    if "://" not in text:
        return text
    text = _USERINFO.sub(f"{MASK}@", text)  # first, whatever characters the password holds
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def _redact_crudely(url: str) -> str:
    url = re.sub(r"://[^/@\s]*@", f"://{MASK}@", url)
    return re.sub(r"([?&][^=&#\s]+=)[^&#\s]*", lambda m: m.group(1) + MASK, url)


class RedactingFilter(logging.Filter):
    """A handler filter: URLs in the message and in the traceback of every record are redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: let the handler report it as logging does
            return True
        cleaned = redact_text(message)
        if record.exc_info:
            trace = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            cleaned = f"{cleaned}\n{redact_text(trace)}"
            record.exc_info = None
            record.exc_text = None
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add a :class:`RedactingFilter` to every handler of ``logger`` (default: the root logger)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
