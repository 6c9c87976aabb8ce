"""Downloads and uploads against a local server standing in for R2 signed URLs."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest

from gpu_worker.errors import WorkerError
from gpu_worker.job import InputFile, MultipartTarget, OutputTarget, PartsRequest, PartTarget, PutTarget
from gpu_worker.transfer import download_input, upload_output

from .conftest import SIGNATURE


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "video.mp4"
    path.write_bytes(bytes(range(256)) * 1000 + b"tail")  # 256004 bytes
    return path


async def test_download_retries_5xx_then_succeeds(file_host, session, tmp_path):
    file_host.fail["/files/image.png"] = [503, 502]
    path = await download_input(session, InputFile(file_host.url("/files/image.png")), str(tmp_path), "in.png",
                                max_bytes=10**7, attempts=3, backoff_s=0.01)
    assert path.read_bytes() == file_host.files["image.png"]
    assert file_host.requests.count(("GET", "/files/image.png")) == 3


async def test_download_checks_the_verified_sha256(file_host, session, tmp_path):
    expected = hashlib.sha256(file_host.files["image.png"]).hexdigest()
    good = InputFile(file_host.url("/files/image.png"), sha256=expected)
    path = await download_input(session, good, str(tmp_path), "image.png", max_bytes=10**7)
    assert path.read_bytes() == file_host.files["image.png"]

    changed = InputFile(file_host.url("/files/image.png"), sha256="0" * 64)
    with pytest.raises(WorkerError) as info:
        await download_input(session, changed, str(tmp_path), "image.png", max_bytes=10**7, attempts=3, backoff_s=0.01)
    assert info.value.code == "input_changed"
    assert info.value.message.startswith("inputs.image: the downloaded bytes are not the ones verified at upload")
    # Not retried: the same URL would serve the same bytes.
    assert file_host.requests.count(("GET", "/files/image.png")) == 2


async def test_download_does_not_retry_4xx_and_hides_the_signature(file_host, session, tmp_path, capsys):
    with pytest.raises(WorkerError) as info:
        await download_input(session, InputFile(file_host.url("/files/missing.png")), str(tmp_path), "x",
                             max_bytes=10**7, attempts=3, backoff_s=0.01)
    assert info.value.code == "input_download_failed" and "404" in info.value.message
    assert file_host.requests.count(("GET", "/files/missing.png")) == 1
    assert "supersecret" not in info.value.message and "supersecret" not in capsys.readouterr().out


async def test_download_gives_up_after_attempts(file_host, session, tmp_path, capsys):
    file_host.fail["/files/image.png"] = [500, 500, 500]
    with pytest.raises(WorkerError) as info:
        await download_input(session, InputFile(file_host.url("/files/image.png")), str(tmp_path), "x",
                             max_bytes=10**7, attempts=3, backoff_s=0.01)
    assert info.value.code == "input_download_failed"
    assert SIGNATURE not in capsys.readouterr().out + info.value.message


async def test_download_size_cap(file_host, session, tmp_path):
    with pytest.raises(WorkerError, match="larger than 100 bytes"):
        await download_input(session, InputFile(file_host.url("/files/image.png")), str(tmp_path), "x",
                             max_bytes=100, attempts=1)


async def test_single_put_retries_503_with_exact_length_and_headers(file_host, session, video):
    file_host.fail["/put/out.mp4"] = [503]
    target = OutputTarget(put=PutTarget(file_host.url("/put/out.mp4"), {"content-type": "video/mp4",
                                                                          "x-amz-meta-job": "j1"}))
    result = await upload_output(session, video, target, attempts=3, backoff_s=0.01)
    data = video.read_bytes()
    stored = file_host.puts["out.mp4"]
    assert stored["body"] == data
    assert stored["headers"]["Content-Length"] == str(len(data))
    assert "Transfer-Encoding" not in stored["headers"]  # signed PUTs reject chunked bodies
    assert stored["headers"]["Content-Type"] == "video/mp4" and stored["headers"]["x-amz-meta-job"] == "j1"
    assert (result.size, result.sha256, result.parts) == (len(data), hashlib.sha256(data).hexdigest(), None)


async def test_put_4xx_fails_without_retry(file_host, session, video):
    file_host.fail["/put/out.mp4"] = [403]
    target = OutputTarget(put=PutTarget(file_host.url("/put/out.mp4")))
    with pytest.raises(WorkerError) as info:
        await upload_output(session, video, target, attempts=3, backoff_s=0.01)
    assert info.value.code == "output_upload_failed" and "403" in info.value.message
    assert file_host.requests.count(("PUT", "/put/out.mp4")) == 1


CREATE_ONLY = {"content-type": "video/mp4", "if-none-match": "*"}


async def test_create_only_put_whose_answer_was_lost_counts_as_stored_on_the_retry(file_host, session, video):
    # The first PUT stored the video but its answer was lost (a 502 on the way back): the retry meets the
    # create-only refusal, which means the bytes are there. The Worker verifies the reported size and sha256.
    file_host.fail_after_store["/put/out.mp4"] = [502]
    target = OutputTarget(put=PutTarget(file_host.url("/put/out.mp4"), CREATE_ONLY))
    result = await upload_output(session, video, target, attempts=3, backoff_s=0.01)
    data = video.read_bytes()
    assert file_host.requests.count(("PUT", "/put/out.mp4")) == 2
    assert file_host.puts["out.mp4"]["body"] == data
    assert (result.size, result.sha256, result.parts) == (len(data), hashlib.sha256(data).hexdigest(), None)


async def test_create_only_put_refused_at_once_fails(file_host, session, video):
    # Refused on the first try: somebody else's bytes are there (a duplicate run); never reported as ours.
    file_host.puts["out.mp4"] = {"body": b"other", "headers": {}}
    target = OutputTarget(put=PutTarget(file_host.url("/put/out.mp4"), CREATE_ONLY))
    with pytest.raises(WorkerError) as info:
        await upload_output(session, video, target, attempts=3, backoff_s=0.01)
    assert info.value.code == "output_upload_failed" and "412" in info.value.message
    assert file_host.puts["out.mp4"]["body"] == b"other"


def multipart(host, count: int, part_size: int) -> MultipartTarget:
    return MultipartTarget(part_size, tuple(PartTarget(n, host.url(f"/put/part{n}")) for n in range(1, count + 1)))


async def test_multipart_uploads_parts_in_order_with_etags_and_one_retry(file_host, session, video):
    file_host.fail["/put/part2"] = [500]
    target = OutputTarget(put=PutTarget(file_host.url("/put/out.mp4")), multipart=multipart(file_host, 5, 100_000))
    seen = []
    result = await upload_output(session, video, target, attempts=3, backoff_s=0.01,
                                 progress=lambda done, total: seen.append(done))
    data = video.read_bytes()
    bodies = [file_host.puts[f"part{n}"]["body"] for n in (1, 2, 3)]
    assert [len(b) for b in bodies] == [100_000, 100_000, 56_004] and b"".join(bodies) == data
    assert "part4" not in file_host.puts and "out.mp4" not in file_host.puts  # too big for put; unused parts
    assert [p["part_number"] for p in result.parts] == [1, 2, 3]
    assert result.parts[1]["etag"] == f'"{hashlib.md5(bodies[1]).hexdigest()}"'
    assert result.sha256 == hashlib.sha256(data).hexdigest()  # the retried part is hashed once
    assert seen[-1] == len(data)


async def test_put_is_used_when_the_video_fits_one_part(file_host, session, video):
    target = OutputTarget(put=PutTarget(file_host.url("/put/out.mp4")), multipart=multipart(file_host, 2, 10**6))
    result = await upload_output(session, video, target, attempts=1)
    assert result.parts is None and "out.mp4" in file_host.puts


async def test_too_few_parts_is_output_too_large(file_host, session, video):
    target = OutputTarget(multipart=multipart(file_host, 2, 100_000))
    with pytest.raises(WorkerError) as info:
        await upload_output(session, video, target, attempts=1)
    assert info.value.code == "output_too_large"
    assert file_host.puts == {}


async def test_a_video_over_the_put_bound_asks_parts_url_for_its_parts(file_host, session, video):
    target = OutputTarget(put=PutTarget(file_host.url("/put/out.mp4"), max_size=200_000),
                          parts_url=PartsRequest(file_host.url("/parts")))
    result = await upload_output(session, video, target, attempts=1)
    data = video.read_bytes()
    assert file_host.parts_asked == [{"size": len(data)}]
    assert b"".join(file_host.puts[f"part{n}"]["body"] for n in (1, 2, 3)) == data
    assert "out.mp4" not in file_host.puts
    assert [p["part_number"] for p in result.parts] == [1, 2, 3]
    assert result.sha256 == hashlib.sha256(data).hexdigest()


async def test_a_video_within_the_put_bound_never_asks_for_parts(file_host, session, video):
    target = OutputTarget(put=PutTarget(file_host.url("/put/out.mp4"), max_size=300_000),
                          parts_url=PartsRequest(file_host.url("/parts")))
    result = await upload_output(session, video, target, attempts=1)
    assert result.parts is None and "out.mp4" in file_host.puts
    assert file_host.parts_asked == []


@pytest.mark.parametrize("status,code", [(413, "output_too_large"), (409, "output_upload_failed")])
async def test_a_refused_parts_request_fails_with_its_code(file_host, session, video, status, code):
    file_host.fail["/parts"] = [status]
    target = OutputTarget(put=PutTarget(file_host.url("/put/out.mp4"), max_size=1000),
                          parts_url=PartsRequest(file_host.url("/parts")))
    with pytest.raises(WorkerError) as info:
        await upload_output(session, video, target, attempts=2, backoff_s=0.01)
    assert info.value.code == code
    assert file_host.puts == {}


async def test_a_video_over_the_put_bound_without_parts_is_output_too_large(file_host, session, video):
    target = OutputTarget(put=PutTarget(file_host.url("/put/out.mp4"), max_size=1000))
    with pytest.raises(WorkerError) as info:
        await upload_output(session, video, target, attempts=1)
    assert info.value.code == "output_too_large" and file_host.puts == {}
