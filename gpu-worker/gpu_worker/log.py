"""JSON log lines on stdout, and the redaction of signed URLs (we never log a query string)."""

from __future__ import annotations

import json
import re
import sys
import time
from collections import deque
from urllib.parse import urlsplit, urlunsplit

# The newest lines of each job, carried back to the Worker in the job's status answers (the job's log for its
# client), each cut to a length: the answers are polled, so they stay small.
JOB_LINES_KEPT = 50
JOB_LINE_CHARS = 500
_job_lines: dict[str, deque[str]] = {}

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


def _names_only(text: str) -> str:
    """Free text for a job's log: redacted, each absolute path on this machine cut to its file name (the log's
    reader needs to know which file a step read; the worker's directory layout stays private)."""
    return _PATH_RE.sub(lambda m: m.group(1), redact(text))


def log_event(event: str, **fields) -> None:
    """One JSON object per line; string fields are redacted so a URL slipped into a message stays safe. A line about
    a job (`job_id`) is also kept for that job's log, with local paths cut to file names."""
    record = {"ts": round(time.time(), 3), "event": event}
    for key, value in fields.items():
        record[key] = redact(value) if isinstance(value, str) else value
    print(json.dumps(record, default=str), file=sys.stdout, flush=True)
    job_id = fields.get("job_id")
    if isinstance(job_id, str):
        public = {k: _names_only(v) if isinstance(v, str) else v for k, v in record.items()}
        line = json.dumps(public, default=str)
        while len(line) > JOB_LINE_CHARS:
            # Still one JSON object: the longest string field is shortened, not the line cut mid-way.
            texts = [k for k, v in public.items() if isinstance(v, str) and len(v) > 3 and k != "event"]
            if not texts:
                line = json.dumps({"ts": record["ts"], "event": event, "job_id": job_id, "truncated": True})
                break
            longest = max(texts, key=lambda k: len(public[k]))
            keep = max(0, len(public[longest]) - (len(line) - JOB_LINE_CHARS) - 3)
            public[longest] = public[longest][:keep] + "..."
            line = json.dumps(public, default=str)
        _job_lines.setdefault(job_id, deque(maxlen=JOB_LINES_KEPT)).append(line)


def job_lines(job_id: str) -> list[str]:
    """The newest lines logged about the job, oldest first."""
    return list(_job_lines.get(job_id, ()))


def forget_job_lines(job_id: str) -> None:
    _job_lines.pop(job_id, None)
