"""Client for the Reelgate video generation API, on the Python standard library alone.

    import reelgate

    client = reelgate.Client()  # REELGATE_URL (or the running `npm start`) and REELGATE_API_KEY
    job = client.run("preview", {"image": "still.png", "audio": "voice.wav"}, on_progress=print)
    job.download("video.mp4")
"""

from .client import (
    CONTENT_TYPES,
    TERMINAL_STATUSES,
    Client,
    FinishedJob,
    build_request,
    retry_after_seconds,
)
from .errors import JobFailedError, ReelgateConnectionError, ReelgateError, WebhookVerificationError
from .local_stack import resolve_api_url
from .model_check import check_input
from .webhooks import sign_webhook, verify_webhook

#: The name of the client in earlier versions.
ReelgateClient = Client

__all__ = [
    "CONTENT_TYPES",
    "TERMINAL_STATUSES",
    "Client",
    "FinishedJob",
    "JobFailedError",
    "ReelgateClient",
    "ReelgateConnectionError",
    "ReelgateError",
    "WebhookVerificationError",
    "build_request",
    "check_input",
    "resolve_api_url",
    "retry_after_seconds",
    "sign_webhook",
    "verify_webhook",
]
