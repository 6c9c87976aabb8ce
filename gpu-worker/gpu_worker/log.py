"""JSON log lines on stdout, and the redaction of signed URLs (we never log a query string)."""

from __future__ import annotations

import json
import re
import sys
import time
from urllib.parse import urlsplit, urlunsplit

_URL_RE = re.compile(r"\b(?:https?|wss?)://[^\s'\"<>]+")
# An absolute file path (not the path part of a URL, which follows a host name): `/tmp/reelgate-x/image.png`.
_PATH_RE = re.compile(r"(?<![\w:/.\-~])/(?:[^\s/'\"<>:]+/)+([^\s/'\"<>:,;)]+)")


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


def public_message(text: str) -> str:
    """A message fit for the job's error, which API users read: redacted, and every absolute path on this machine
    cut to its file name (`cannot identify image file 'image.png'`), so no internal layout leaks."""
    return _PATH_RE.sub(lambda m: m.group(1), redact(text))


def log_event(event: str, **fields) -> None:
    """One JSON object per line; string fields are redacted so a URL slipped into a message stays safe."""
    record = {"ts": round(time.time(), 3), "event": event}
    for key, value in fields.items():
        record[key] = redact(value) if isinstance(value, str) else value
    print(json.dumps(record, default=str), file=sys.stdout, flush=True)
