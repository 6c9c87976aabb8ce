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
# The same path as exception texts quote it, with the space before it: ` '/tmp/reelgate-x/image.png'`.
_QUOTED_PATH_RE = re.compile(r"""\s?(['"])/(?:[^\s/'"<>:]+/)+[^\s/'"<>:]+\1""")


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
    dropped (`inputs.image could not be decoded: cannot identify image file`): the message names the job's input,
    never a file of the worker, so no internal layout (or the job's temporary directory) leaks."""
    cut = _PATH_RE.sub("", _QUOTED_PATH_RE.sub("", redact(text)))
    return re.sub(r"[ \t]{2,}", " ", cut).strip()


def log_event(event: str, **fields) -> None:
    """One JSON object per line; string fields are redacted so a URL slipped into a message stays safe."""
    record = {"ts": round(time.time(), 3), "event": event}
    for key, value in fields.items():
        record[key] = redact(value) if isinstance(value, str) else value
    print(json.dumps(record, default=str), file=sys.stdout, flush=True)
