"""Offline tests: webhook verification (against the Standard Webhooks spec's own example) and request building."""

import json
import time

import pytest

import reelgate as rc

# The example delivery from the Standard Webhooks specification; the reference library signs it the same way.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(msg_id=SPEC_ID, ts=SPEC_TS, sig=SPEC_SIGNATURE):
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def test_signs_the_spec_example():
    assert rc.sign_webhook(SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SECRET) == SPEC_SIGNATURE


def test_verifies_the_spec_example_and_returns_the_payload():
    assert rc.verify_webhook(SPEC_BODY, headers(), SPEC_SECRET, now=SPEC_TS + 10) == {"test": 2432232314}


def test_accepts_bytes_and_header_names_in_any_case():
    h = {k.title(): v for k, v in headers().items()}
    assert rc.verify_webhook(SPEC_BODY.encode(), h, SPEC_SECRET, now=SPEC_TS) == {"test": 2432232314}


def test_accepts_one_valid_signature_among_several():
    h = headers(sig=f"v1,bm90IHRoaXMgb25l v2,abc {SPEC_SIGNATURE}")
    assert rc.verify_webhook(SPEC_BODY, h, SPEC_SECRET, now=SPEC_TS)


@pytest.mark.parametrize(
    "body, hdrs, now",
    [
        pytest.param(SPEC_BODY + " ", headers(), SPEC_TS, id="tampered body"),
        pytest.param(SPEC_BODY, headers(msg_id="msg_other"), SPEC_TS, id="other message id"),
        pytest.param(SPEC_BODY, headers(), SPEC_TS + 301, id="timestamp older than 5 minutes"),
        pytest.param(SPEC_BODY, headers(), SPEC_TS - 301, id="timestamp from the future"),
        pytest.param(SPEC_BODY, {"webhook-id": SPEC_ID}, SPEC_TS, id="missing headers"),
        pytest.param(SPEC_BODY, headers(ts="soon"), SPEC_TS, id="timestamp not a number"),
    ],
)
def test_rejects(body, hdrs, now):
    with pytest.raises(rc.WebhookVerificationError):
        rc.verify_webhook(body, hdrs, SPEC_SECRET, now=now)


def test_round_trip_with_a_fresh_timestamp():
    ts = int(time.time())
    body = json.dumps({"type": "job.succeeded", "data": {"id": "job_x"}})
    sig = rc.sign_webhook("msg_1", ts, body, SPEC_SECRET)
    assert rc.verify_webhook(body, headers("msg_1", ts, sig), SPEC_SECRET)["data"]["id"] == "job_x"


def test_build_request_sets_auth_json_and_extra_headers():
    req = rc.build_request("http://api.test/", "rg_key", "POST", "/v1/jobs", {"model": "preview"}, {"Idempotency-Key": "k1"})
    assert req.full_url == "http://api.test/v1/jobs"
    assert req.get_method() == "POST"
    assert req.get_header("Authorization") == "Bearer rg_key"
    assert req.get_header("Content-type") == "application/json"
    assert req.get_header("Idempotency-key") == "k1"
    assert json.loads(req.data) == {"model": "preview"}


def test_build_request_without_body_has_no_content_type():
    req = rc.build_request("http://api.test", "rg_key", "GET", "/v1/jobs/job_1")
    assert req.data is None
    assert req.get_header("Content-type") is None


def test_retry_after_reads_seconds_and_dates():
    assert rc.retry_after_seconds("3") == 3.0
    assert rc.retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480) == 10.0
    assert rc.retry_after_seconds("soon") is None
    assert rc.retry_after_seconds(None) is None


def test_problem_becomes_reelgate_error():
    err = rc.ReelgateError(404, {"code": "not_found", "detail": "Job not found."})
    assert (err.status, err.code, err.detail) == (404, "not_found", "Job not found.")
