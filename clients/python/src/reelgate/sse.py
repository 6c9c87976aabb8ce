"""A Server-Sent Events parser (WHATWG HTML, "Parsing an event stream") fed one decoded line at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class SseMessage:
    event: str
    data: str
    id: str


@dataclass
class SseParser:
    """Keeps the last event id and the server's ``retry`` across reconnections, as a resuming client needs."""

    last_event_id: str = ""
    retry_ms: Optional[int] = None
    _event: str = ""
    _data: List[str] = field(default_factory=list)

    def line(self, line: str) -> Optional[SseMessage]:
        """Feeds one line (without its line break); returns the message it completes, if any."""
        if line == "":
            data, event = self._data, self._event or "message"
            self._data, self._event = [], ""
            return SseMessage(event, "\n".join(data), self.last_event_id) if data else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None
