"""Standard Webhooks signatures (https://www.standardwebhooks.com): what a Reelgate webhook receiver verifies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Mapping, Optional, Union

from .errors import WebhookVerificationError


def sign_webhook(msg_id: str, timestamp: Union[int, str], body: Union[str, bytes], secret: str) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) a sender computes for a delivery."""
    key = base64.b64decode(secret[len("whsec_") :] if secret.startswith("whsec_") else secret)
    payload = body if isinstance(body, bytes) else body.encode("utf-8")
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + payload, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify_webhook(
    body: Union[str, bytes],
    headers: Mapping[str, str],
    secret: str,
    tolerance_s: int = 300,
    now: Optional[float] = None,
) -> Any:
    """Verifies a delivery against the raw body and returns the parsed payload.

    Raises WebhookVerificationError on missing headers, a timestamp more than ``tolerance_s`` from now (replays),
    or no matching ``v1`` signature. Pass the body exactly as received: re-serialised JSON would not match.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, timestamp, signatures = (lower.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not msg_id or not timestamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not timestamp.isdigit():
        raise WebhookVerificationError("the webhook timestamp is not a number")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_s:
        raise WebhookVerificationError("the webhook timestamp is outside the tolerance")
    expected = sign_webhook(msg_id, timestamp, body, secret).split(",", 1)[1]
    # Several signatures may be sent while a secret rotates: any valid v1 one will do.
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return json.loads(body)
    raise WebhookVerificationError("no matching webhook signature")
