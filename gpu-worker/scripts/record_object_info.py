#!/usr/bin/env python3
"""Records a ComfyUI release's node definitions (`GET /object_info`) as test data.

Starts ComfyUI `--cpu` from a checkout on a free loopback port, in a scratch base directory (so the checkout and
any models stay untouched), reads `/object_info` and `/system_stats`, stops it, and writes one JSON file: every
node's definition, one node per line so a new release's changes read as a diff. The Worker's workflow check
(src/models/object-info.ts) and its tests read that file.

    python gpu-worker/scripts/record_object_info.py --comfy-dir /path/to/ComfyUI \\
        [--python /path/to/venv/bin/python] [--out test/data/comfyui-object-info.json]

The checkout must be the release the Docker image pins (COMFYUI_VERSION); its requirements (and `requests`)
must be installed for --python. Nothing here needs a GPU or model weights.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "test" / "data" / "comfyui-object-info.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return json.load(resp)


def wait_ready(url: str, proc: subprocess.Popen, deadline_s: float) -> dict:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return get_json(f"{url}/system_stats")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc.poll() is not None:
            raise SystemExit(f"ComfyUI exited with code {proc.returncode} before it answered")
        if time.monotonic() > deadline:
            raise SystemExit(f"ComfyUI did not answer within {deadline_s:.0f} s")
        time.sleep(0.5)


def render(version: str, nodes: dict) -> str:
    """`{"comfyui_version", "nodes": {name: definition}}`, sorted, one node per line."""
    lines = [f"\t{json.dumps(name)}: {json.dumps(nodes[name], sort_keys=True, ensure_ascii=False)}"
             for name in sorted(nodes)]
    return "{\n" + f'"comfyui_version": {json.dumps(version)},\n"nodes": {{\n' + ",\n".join(lines) + "\n}\n}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfy-dir", required=True, type=Path, help="ComfyUI checkout (main.py)")
    parser.add_argument("--python", default=sys.executable, help="python with ComfyUI's requirements")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--start-timeout", type=float, default=600.0)
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="comfy-record-") as base:
        for folder in ("custom_nodes", "models", "input", "output", "temp", "user"):
            Path(base, folder).mkdir()
        command = [args.python, str(args.comfy_dir / "main.py"), "--cpu", "--listen", "127.0.0.1", "--port",
                   str(port), "--disable-auto-launch", "--base-directory", base,
                   "--database-url", "sqlite:///:memory:"]
        proc = subprocess.Popen(command, cwd=args.comfy_dir)
        try:
            stats = wait_ready(url, proc, args.start_timeout)
            nodes = get_json(f"{url}/object_info")
        finally:
            proc.terminate()
            proc.wait(30)
    version = stats.get("system", {}).get("comfyui_version", "unknown")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(version, nodes), encoding="utf-8")
    print(json.dumps({"event": "recorded", "out": str(args.out), "nodes": len(nodes), "comfyui_version": version}))


if __name__ == "__main__":
    main()
