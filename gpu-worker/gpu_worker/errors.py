"""One error shape for every failure: `{"error": {"code": ..., "message": ...}}` inside the worker, and one wire
form at its edges (docs/gpu-job-protocol.md): RunPod declares a job's `error` a string, so the code and message
travel as JSON text, `{"error": "{\"code\": ..., \"message\": ...}"}`.
"""

from __future__ import annotations

import json

from .log import public_message

ERROR_CODES = (
    "invalid_input",
    "input_download_failed",
    "input_changed",
    "models_missing",
    "inference_failed",
    "output_upload_failed",
    "output_too_large",
    "timeout",
    "canceled",
    "internal",
)


class WorkerError(Exception):
    """A failure with a protocol error code. The message is shown to API users: no secrets, no signed URLs, no
    path on this machine."""

    def __init__(self, code: str, message: str):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = public_message(message)

    def body(self) -> dict:
        return error_body(self.code, self.message)


class JobInputError(WorkerError):
    """Raised by parse_job_input(); always `invalid_input`."""

    def __init__(self, message: str, code: str = "invalid_input"):
        super().__init__(code, message)


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": public_message(message)}}


def error_from_exception(exc: BaseException) -> dict:
    """Maps any exception to the error shape; unexpected ones become `internal` without their details."""
    if isinstance(exc, WorkerError):
        return exc.body()
    return error_body("internal", f"internal error ({type(exc).__name__})")


def is_error(result: dict) -> bool:
    return isinstance(result, dict) and isinstance(result.get("error"), dict)


def error_text(error: dict) -> str:
    """The wire form of `{"code", "message"}`. A dict in `error` is not handled by RunPod (the job comes back
    COMPLETED without output) and the SDK's local API refuses it, so only a string may leave the worker."""
    return json.dumps({"code": error["code"], "message": error["message"]}, ensure_ascii=False)


def to_wire(result: dict) -> dict:
    """A job's result as it leaves the worker: an error's object becomes its JSON text, anything else is kept."""
    return {**result, "error": error_text(result["error"])} if is_error(result) else result
