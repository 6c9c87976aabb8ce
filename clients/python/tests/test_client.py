"""The client against a scripted API on loopback: run(), following jobs, uploads, errors, finding the API."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import urllib.parse
import zlib
from pathlib import Path

import pytest

import reelgate
from conftest import FakeApi, Reply, Seen, event, job, problem

PREVIEW = {
    "id": "preview",
    "available": True,
    "accepting_jobs": True,
    "inputs": {"image": {"required": True}, "audio": {"required": False}},
    "parameters": {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "maxLength": 2000},
            "duration_s": {"type": "number", "minimum": 0.5, "maximum": 60},
            "fps": {"type": "integer", "minimum": 1, "maximum": 60},
            "resolution": {"type": "string", "x-resolution": {"min_side": 64, "max_side": 1920, "multiple_of": 16}},
        },
    },
}


def png(width: int = 8, height: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def scripted(api: FakeApi, final: str = "succeeded", model=PREVIEW):
    """Uploads (single PUT), a job streamed to `final`, its video; `model` is the catalog's entry."""

    def answer(req: Seen, n: int) -> Reply:
        if req.path == "/v1/models/preview":
            return Reply(200, model)
        if req.method == "POST" and req.path == "/v1/uploads":
            uid = f"upl_{sum(s.path == '/v1/uploads' for s in api.seen)}"
            return Reply(201, {"id": uid, "status": "pending", "upload": {"url": f"{api.url}/put/{uid}?sig=secret", "headers": {}}})
        if req.method == "PUT":
            return Reply(200, {})
        if req.path.endswith("/complete"):
            return Reply(200, {"id": req.path.split("/")[3], "status": "ready"})
        if req.method == "POST" and req.path == "/v1/jobs":
            return Reply(202, job("job_run", "queued", 0))
        if req.path == "/v1/jobs/job_run/events":
            end = job("job_run", "succeeded", 100) if final == "succeeded" else job("job_run", "failed", 40, error={"code": "inference_failed", "message": "out of memory"})
            return Reply(events=event(1, "progress", job("job_run", "running", 40)) + event(2, "status", end))
        if req.path == "/v1/jobs/job_run/video":
            return Reply(200, b"not really an mp4", {"content-type": "video/mp4"})
        return Reply(404, problem(404, "not_found", req.path))

    api.script = answer


@pytest.fixture
def still(tmp_path: Path) -> Path:
    path = tmp_path / "still.png"
    path.write_bytes(png())
    return path


def test_run_uploads_starts_follows_and_downloads(api: FakeApi, still: Path, tmp_path: Path):
    scripted(api)
    client = reelgate.Client(api.url, "rg_test")
    seen = []
    done = client.run("preview", {"image": still, "duration_s": 2}, on_progress=seen.append)
    assert done["status"] == "succeeded"
    create = json.loads(next(s for s in api.seen if s.path == "/v1/uploads").body)
    assert create["filename"] == "still.png" and create["content_type"] == "image/png"
    assert create["sha256"] == hashlib.sha256(png()).hexdigest()
    assert next(s for s in api.seen if s.method == "PUT").body == png()
    started = next(s for s in api.seen if s.path == "/v1/jobs")
    assert json.loads(started.body) == {"model": "preview", "input": {"image": "upl_1", "duration_s": 2}}
    assert len(started.headers["idempotency-key"]) == 36
    uploads = [p for p in seen if p["stage"] == "upload"]
    assert uploads[-1]["sent"] == uploads[-1]["total"] == len(png())
    assert [p["job"]["status"] for p in seen if p["stage"] == "job"] == ["running", "succeeded"]
    out = tmp_path / "video.mp4"
    assert done.download(str(out)) == 17
    assert out.read_bytes() == b"not really an mp4"
    # Still the API's JSON.
    assert json.loads(json.dumps(done))["id"] == "job_run"


def test_run_refuses_an_input_outside_the_schema_before_uploading(api: FakeApi, still: Path):
    scripted(api)
    client = reelgate.Client(api.url, "rg_test")
    with pytest.raises(reelgate.ReelgateError) as refused:
        client.run("preview", {"image": still, "resolution": "100x100", "fps": 0.5, "colour": "red"})
    assert refused.value.status == 400
    assert [e["field"] for e in refused.value.field_errors] == ["input.resolution", "input.fps", "input.colour"]
    assert refused.value.field_errors[1]["message"] == "must be an integer from 1 to 60"
    assert [s.path for s in api.seen] == ["/v1/models/preview"]


def test_run_says_why_a_model_cannot_run_before_uploading(api: FakeApi, still: Path):
    unserved = {"available": False, "accepting_jobs": False, "unavailable_reason": "no enabled backend serves it"}
    scripted(api, model={**PREVIEW, **unserved})
    with pytest.raises(reelgate.ReelgateError) as refused:
        reelgate.Client(api.url, "rg_test").run("preview", {"image": still})
    # What the API answers for the job: 422 model_unavailable, naming the field.
    assert (refused.value.status, refused.value.code) == (422, "model_unavailable")
    assert refused.value.field_errors == [{"path": "json.model", "field": "model", "message": "no enabled backend serves it"}]
    assert "no enabled backend serves it" in str(refused.value)
    assert [s.path for s in api.seen] == ["/v1/models/preview"]


def test_run_sends_a_job_whose_backends_are_only_unhealthy(api: FakeApi):
    # The API accepts such a job and it waits (queue.reason backend_unhealthy): the client must not refuse it.
    failing = {"available": False, "accepting_jobs": True, "unavailable_reason": "every backend that serves it is failing"}
    scripted(api, model={**PREVIEW, **failing})
    job = reelgate.Client(api.url, "rg_test").run("preview", {"image": "upl_abc"})
    assert job["status"] == "succeeded"
    assert "/v1/jobs" in [s.path for s in api.seen]


def test_run_passes_upload_ids_and_urls_through(api: FakeApi):
    scripted(api)
    reelgate.Client(api.url, "rg_test").run("preview", {"image": "upl_abc", "audio": "https://media.example/a.wav"})
    assert not [s for s in api.seen if s.path == "/v1/uploads"]
    started = json.loads(next(s for s in api.seen if s.path == "/v1/jobs").body)
    assert started["input"] == {"image": "upl_abc", "audio": "https://media.example/a.wav"}


def test_run_raises_job_failed_with_the_job(api: FakeApi):
    scripted(api, final="failed")
    with pytest.raises(reelgate.JobFailedError) as failed:
        reelgate.Client(api.url, "rg_test").run("preview", {"image": "upl_abc"})
    assert failed.value.job["error"]["code"] == "inference_failed"
    assert "out of memory" in str(failed.value)


def test_follow_resumes_a_broken_stream_with_last_event_id(api: FakeApi):
    streams = []

    def answer(req: Seen, n: int) -> Reply:
        if req.path.endswith("/events"):
            streams.append(req.headers.get("last-event-id"))
            if len(streams) == 1:
                return Reply(events="retry: 10\n" + event(5, "progress", job("job_r", "running", 40)))
            return Reply(events=event(6, "status", job("job_r", "succeeded", 100)))
        return Reply(200, job("job_r", "running", 40))

    api.script = answer
    events = list(reelgate.Client(api.url, "rg_test").follow("job_r"))
    assert [(e["type"], e["job"]["status"], e["source"]) for e in events] == [
        ("progress", "running", "stream"),
        ("status", "succeeded", "stream"),
    ]
    assert streams == [None, "5"]


def test_follow_polls_when_there_is_no_event_stream(api: FakeApi):
    polls = []

    def answer(req: Seen, n: int) -> Reply:
        if req.path.endswith("/events"):
            return Reply(404, problem(404, "not_found", "no route"))
        polls.append(req.path)
        return Reply(200, job("job_p", "succeeded" if len(polls) >= 3 else "running", len(polls) * 30))

    api.script = answer
    final = reelgate.Client(api.url, "rg_test").wait_for_job("job_p", poll_interval=0.01)
    assert final["status"] == "succeeded" and len(polls) == 3


def test_a_refusal_carries_each_field(api: FakeApi):
    errors = [{"path": "json.input.fps", "message": "must be at least 1"}, {"path": "json", "message": "has no field"}]
    api.script = lambda req, n: Reply(400, problem(400, "invalid_request", "input.fps: must be at least 1; …", errors))
    with pytest.raises(reelgate.ReelgateError) as refused:
        reelgate.Client(api.url, "rg_test").create_job({"model": "preview", "input": {"image": "upl_x", "fps": 0}})
    assert [e["field"] for e in refused.value.field_errors] == ["input.fps", "body"]
    assert str(refused.value).startswith("input.fps: must be at least 1")


def test_multipart_parts_are_sent_from_their_offsets(api: FakeApi, tmp_path: Path):
    data = b"aaaabbbbcc"
    path = tmp_path / "tone.wav"
    path.write_bytes(data)

    def answer(req: Seen, n: int) -> Reply:
        if req.path.startswith("/v1/uploads/inline"):
            # A server whose one-request route takes less than this file.
            return Reply(413, problem(413, "payload_too_large", "too large"))
        if req.path == "/v1/uploads":
            parts = [{"part_number": i, "size": 2 if i == 3 else 4, "url": f"{api.url}/part/{i}", "headers": {}} for i in (1, 2, 3)]
            return Reply(201, {"id": "upl_m", "status": "pending", "multipart": {"part_size": 4, "parts": parts}})
        if req.method == "PUT":
            return Reply(200, {})
        return Reply(200, {"id": "upl_m", "status": "ready"})

    api.script = answer
    progress = []
    reelgate.Client(api.url, "rg_test").upload_file(path, on_progress=lambda sent, total: progress.append(sent))
    assert [(s.path, s.body) for s in api.seen if s.method == "PUT"] == [("/part/1", b"aaaa"), ("/part/2", b"bbbb"), ("/part/3", b"cc")]
    assert progress[-1] == 10


def test_a_small_file_goes_in_one_request(api: FakeApi, tmp_path: Path):
    data = png()
    path = tmp_path / "a b.png"
    path.write_bytes(data)

    def answer(req: Seen, n: int) -> Reply:
        if req.method == "POST" and req.path.startswith("/v1/uploads/inline"):
            return Reply(201, {"id": "upl_i", "status": "ready", "size": len(req.body)})
        return Reply(404, problem(404, "not_found", req.path))

    api.script = answer
    progress = []
    ready = reelgate.Client(api.url, "rg_test").upload_file(path, on_progress=lambda sent, total: progress.append(sent))
    assert ready["status"] == "ready"
    assert len(api.seen) == 1
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(api.seen[0].path).query)
    assert query["filename"] == ["a b.png"]
    assert query["sha256"] == [hashlib.sha256(data).hexdigest()]
    assert api.seen[0].headers["content-type"] == "image/png"
    assert api.seen[0].body == data
    assert progress[-1] == len(data)


def test_no_answer_names_the_url_and_how_to_change_it(api: FakeApi):
    url = api.url
    api.close()
    client = reelgate.Client(url, "rg_test", max_retries=0)
    with pytest.raises(reelgate.ReelgateConnectionError) as unreachable:
        client.get_job("job_x")
    assert f"Cannot reach the Reelgate API at {url}" in str(unreachable.value)
    assert "url= or REELGATE_URL" in str(unreachable.value)


def test_finds_the_local_stack_npm_start_recorded(api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("REELGATE_URL", "REELGATE_PORT", "REELGATE_LOCAL_FILE"):
        monkeypatch.delenv(name, raising=False)
    record = tmp_path / "checkout" / ".reelgate" / "local.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"url": api.url, "admin_token_file": "/nowhere", "pid": 1}))
    nested = tmp_path / "checkout" / "examples" / "python"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    monkeypatch.setenv("REELGATE_API_KEY", "rg_env")
    api.script = lambda req, n: Reply(200, job("job_n", "running", 5))
    client = reelgate.Client()
    assert client.base_url == api.url
    assert client.get_job("job_n")["status"] == "running"
    assert api.seen[0].headers["authorization"] == "Bearer rg_env"
    monkeypatch.setenv("REELGATE_URL", "http://127.0.0.1:1/")
    assert reelgate.Client().base_url == "http://127.0.0.1:1"


def test_says_how_to_get_a_key(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("REELGATE_API_KEY", raising=False)
    with pytest.raises(ValueError, match="npm run keys -- create"):
        reelgate.Client("http://127.0.0.1:1")


def test_the_installed_package_is_typed_and_keeps_its_old_name():
    from importlib import metadata

    import reelgate_client

    assert metadata.version("reelgate")
    assert (Path(reelgate.__file__).parent / "py.typed").is_file()
    assert reelgate_client.ReelgateClient is reelgate.Client
    # The tests import the installed package, not the source folder.
    assert "site-packages" in reelgate.__file__ or os.environ.get("REELGATE_CLIENT_FROM_SOURCE")
