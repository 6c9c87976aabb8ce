"""Where the API is: an explicit URL, REELGATE_URL, REELGATE_PORT, or the local stack that ``npm start`` recorded in
``.reelgate/local.json`` (REELGATE_LOCAL_FILE, else looked for from the working directory up), else the default."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

DEFAULT_URL = "http://127.0.0.1:8787"


@dataclass(frozen=True)
class ApiTarget:
    url: str
    #: Where the URL came from, for messages: "the url argument", "REELGATE_URL", a record's path, "the default".
    source: str
    #: True when it came from a running ``npm start``'s record.
    from_record: bool = False


def _record_file(env: Mapping[str, str], cwd: Path) -> Optional[Path]:
    if env.get("REELGATE_LOCAL_FILE"):
        return Path(env["REELGATE_LOCAL_FILE"])
    for folder in (cwd, *cwd.parents):
        candidate = folder / ".reelgate" / "local.json"
        if candidate.is_file():
            return candidate
    return None


def resolve_api_url(url: Optional[str] = None, env: Optional[Mapping[str, str]] = None, cwd: Optional[Path] = None) -> ApiTarget:
    env = os.environ if env is None else env
    if url:
        return ApiTarget(url.rstrip("/"), "the url argument")
    if env.get("REELGATE_URL"):
        return ApiTarget(env["REELGATE_URL"].rstrip("/"), "REELGATE_URL")
    if env.get("REELGATE_PORT"):
        return ApiTarget(f"http://127.0.0.1:{env['REELGATE_PORT']}", "REELGATE_PORT")
    record = _record_file(env, cwd or Path.cwd())
    if record is not None and record.is_file():
        try:
            recorded = json.loads(record.read_text("utf-8")).get("url")
        except (OSError, ValueError, AttributeError):
            recorded = None
        if isinstance(recorded, str):
            return ApiTarget(recorded.rstrip("/"), str(record), from_record=True)
    return ApiTarget(DEFAULT_URL, "the default")


def unreachable_message(target: ApiTarget, why: str) -> str:
    """One sentence for a request that got no answer: the URL, where it came from, and how to change it."""
    if target.from_record:
        return (
            f"Cannot reach the Reelgate API at {target.url} ({why}), where `npm start` said it runs ({target.source}). "
            "Is it still running? Start it again, or point the client elsewhere with url= or REELGATE_URL."
        )
    if target.source in ("the default", "REELGATE_PORT"):
        origin = "from REELGATE_PORT" if target.source == "REELGATE_PORT" else "the default: no running `npm start` is recorded"
        return (
            f"Cannot reach the Reelgate API at {target.url} ({why}), {origin}. "
            "Start the local stack with `npm start`, or point the client elsewhere with url= or REELGATE_URL."
        )
    return (
        f"Cannot reach the Reelgate API at {target.url} ({why}; from {target.source}). "
        "Check that it runs there, or point the client elsewhere with url= or REELGATE_URL."
    )
