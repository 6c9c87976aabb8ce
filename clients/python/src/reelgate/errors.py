"""What a failed call raises: the API's problem, no answer at all, or a job that ended without a video."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping


class ReelgateError(Exception):
    """A refused or failed API call, carrying the RFC 9457 problem the server sent (or the same made here, when the
    client refuses an input before sending it)."""

    def __init__(self, status: int, problem: Mapping[str, Any]):
        self.status = status
        self.problem: Dict[str, Any] = dict(problem)
        self.code = str(problem.get("code", "internal"))
        self.detail = str(problem.get("detail", f"HTTP {status}"))
        self.request_id = problem.get("request_id")
        super().__init__(f"{self.detail} ({status} {self.code})")

    @property
    def field_errors(self) -> List[Dict[str, str]]:
        """Each refused field with its rule: ``{"path": "json.input.fps", "field": "input.fps", "message": …}``."""
        out = []
        for e in self.problem.get("errors") or []:
            path = str(e.get("path", ""))
            field = path[len("json.") :] if path.startswith("json.") else ("body" if path == "json" else path)
            out.append({"path": path, "field": field, "message": str(e.get("message", ""))})
        return out


class ReelgateConnectionError(Exception):
    """No answer at all (nothing listens there, DNS failed, the connection broke on every retry). The message names
    the URL tried (never a signed URL's query) and how to point the client elsewhere."""

    def __init__(self, message: str, url: str):
        super().__init__(message)
        self.url = url


class JobFailedError(Exception):
    """``run`` waited for a job that ended without a video; ``job`` says how (``failed`` with its ``error``, or
    ``canceled``)."""

    def __init__(self, job: Mapping[str, Any]):
        self.job = dict(job)
        if job.get("status") == "canceled":
            message = f"The job {job.get('id')} was canceled."
        else:
            error = job.get("error") or {}
            reason = f"{error.get('code')}: {error.get('message')}" if error else "no reason given"
            message = f"The job {job.get('id')} failed: {reason}."
        super().__init__(message)


class WebhookVerificationError(Exception):
    """A webhook delivery whose signature, timestamp or headers do not check out."""
