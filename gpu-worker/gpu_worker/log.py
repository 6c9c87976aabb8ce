"""JSON log lines on stdout, and the redaction of signed URLs (we never log a query string)."""

from __future__ import annotations

import json
import re
import sys
import time
from urllib.parse import urlsplit, urlunsplit

_URL_RE = re.compile(r"\b(?:https?|wss?)://[^\s'\"<>]+")


def strip_query(url: str) -> str:
    """The URL without its query string and fragment: signed URLs carry their credentials there."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


def redact(text: str) -> str:
    """Strips the query string of every URL found in free text (error messages from HTTP libraries)."""
    return _URL_RE.sub(lambda m: strip_query(m.group(0)), str(text))


def log_event(event: str, **fields) -> None:
    """One JSON object per line; string fields are redacted so a URL slipped into a message stays safe."""
    record = {"ts": round(time.time(), 3), "event": event}
    for key, value in fields.items():
        record[key] = redact(value) if isinstance(value, str) else value
    print(json.dumps(record, default=str), file=sys.stdout, flush=True)
