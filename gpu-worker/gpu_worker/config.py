"""Every environment setting of the GPU worker, read once when this module is imported.

Code receives a `Settings` value (default: `SETTINGS`) instead of reading `os.environ` itself, so tests can build
their own with `dataclasses.replace(SETTINGS, ...)`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

KNOWN_MODELS = ("preview", "wan2.2-i2v", "wan2.2-s2v")
# Models that need ComfyUI (and their weights on the volume); `preview` renders on the CPU.
COMFY_MODELS = ("wan2.2-i2v", "wan2.2-s2v")


def _default_models_root() -> str:
    # RunPod mounts a network volume at /runpod-volume in serverless workers and at /workspace in pods.
    for root in ("/runpod-volume", "/workspace"):
        if os.path.isdir(root):
            return f"{root}/models"
    return "/runpod-volume/models"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"config: {name} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"config: {name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    # "serverless": RunPod Serverless loop (runpod SDK). "pod": our own RunPod-compatible HTTP server.
    deployment_mode: str = "serverless"
    # Pod mode: address the HTTP server binds to.
    pod_host: str = "0.0.0.0"
    # Pod mode: port of the HTTP server (8000, like the SDK's local API; ComfyUI keeps 8188).
    pod_port: int = 8000
    # Pod mode: when set, every route requires `Authorization: Bearer <token>`. Empty = no auth (local only!).
    pod_api_token: str = field(default="", repr=False)
    # Pod mode: jobs run at the same time. 1 for a single GPU: Wan 14B fills it.
    pod_concurrency: int = 1
    # Pod mode: jobs waiting beyond the running ones; more answers 429 with Retry-After.
    pod_queue_limit: int = 16
    # Pod mode: seconds a finished job's result stays readable by /status (RunPod keeps /run results 30 min).
    pod_result_ttl_s: float = 1800.0
    # Pod mode: the endpoint id served under RunPod's layout `/v2/{endpoint_id}/...`. Empty: any id.
    pod_endpoint_id: str = ""
    # Base URL of the ComfyUI server started by entrypoint.sh. Empty disables the wan models.
    comfy_url: str = "http://127.0.0.1:8188"
    # Seconds to wait for ComfyUI's /system_stats at startup before giving up.
    comfy_start_timeout_s: float = 600.0
    # PID of a ComfyUI process started by someone else; the startup wait fails fast when it dies. 0 = unknown.
    comfy_pid: int = 0
    # ComfyUI checkout this worker starts and supervises (restarting it when a canceled prompt will not stop).
    # Empty: ComfyUI is someone else's to run (COMFY_URL only).
    comfy_dir: str = ""
    # Extra arguments for ComfyUI's main.py, split on spaces (e.g. `--cpu` or `--highvram`).
    comfy_args: tuple[str, ...] = ()
    # Model-path YAML handed to ComfyUI once, with --extra-model-paths-config. Empty: none.
    comfy_model_paths: str = ""
    # Seconds a canceled prompt may keep ComfyUI busy after the interrupt; past it ComfyUI is restarted, so a
    # canceled job never holds the GPU longer (a node that never checks for interruption would run to its end).
    comfy_cancel_bound_s: float = 30.0
    # Root of the model folders (diffusion_models/, loras/, text_encoders/, vae/, audio_encoders/).
    models_root: str = "/runpod-volume/models"
    # The list of model files (folder, filename, size, sha256, source URL). Empty: gpu-worker/model-files.json.
    model_files: str = ""
    # Models this worker accepts, comma separated in the env var. Default: only the CPU `preview`, so a local run
    # needs no ComfyUI; the Docker image enables the wan models.
    enabled_models: tuple[str, ...] = ("preview",)
    # Seconds a whole job (download, inference, upload) may take before it fails with `timeout`.
    job_timeout_s: float = 1800.0
    # Largest input file accepted, in bytes.
    max_input_bytes: int = 200 * 1024 * 1024
    # Attempts per HTTP request for downloads and uploads (5xx and connection errors only).
    http_attempts: int = 4
    # First retry delay in seconds; doubles each retry.
    http_backoff_s: float = 0.5
    # Where per-job temp files go (inputs, outputs). Empty = the system temp dir.
    work_dir: str = ""
    # Disk the LoRAs jobs fetch by URL may take under MODELS_ROOT/loras/reelgate-cache; past it the least
    # recently used go.
    lora_cache_bytes: int = 20 * 1024**3

    @property
    def comfy_models_enabled(self) -> tuple[str, ...]:
        return tuple(m for m in self.enabled_models if m in COMFY_MODELS)


def load_settings(env: Mapping[str, str] = os.environ) -> Settings:
    enabled_raw = env.get("ENABLED_MODELS", "").strip()
    enabled = tuple(m.strip() for m in enabled_raw.split(",") if m.strip()) if enabled_raw else ("preview",)
    unknown = [m for m in enabled if m not in KNOWN_MODELS]
    if unknown:
        raise SystemExit(f"config: ENABLED_MODELS has unknown models {unknown}; known: {list(KNOWN_MODELS)}")
    mode = env.get("DEPLOYMENT_MODE", "serverless").strip() or "serverless"
    if mode not in ("serverless", "pod"):
        raise SystemExit(f"config: DEPLOYMENT_MODE must be serverless or pod, got {mode!r}")
    return Settings(
        deployment_mode=mode,
        pod_host=env.get("POD_HOST", "0.0.0.0"),
        pod_port=_int(env, "POD_PORT", 8000),
        pod_api_token=env.get("POD_API_TOKEN", ""),
        pod_concurrency=max(1, _int(env, "POD_CONCURRENCY", 1)),
        pod_queue_limit=max(0, _int(env, "POD_QUEUE_LIMIT", 16)),
        pod_result_ttl_s=_float(env, "POD_RESULT_TTL_S", 1800.0),
        pod_endpoint_id=env.get("POD_ENDPOINT_ID", "").strip(),
        comfy_url=env.get("COMFY_URL", "http://127.0.0.1:8188").rstrip("/"),
        comfy_start_timeout_s=_float(env, "COMFY_START_TIMEOUT_S", 600.0),
        comfy_pid=_int(env, "COMFY_PID", 0),
        comfy_dir=env.get("COMFY_DIR", "").strip(),
        comfy_args=tuple(env.get("COMFY_ARGS", "").split()),
        comfy_model_paths=env.get("COMFY_MODEL_PATHS", "").strip(),
        comfy_cancel_bound_s=_float(env, "COMFY_CANCEL_BOUND_S", 30.0),
        models_root=env.get("MODELS_ROOT", "") or _default_models_root(),
        model_files=env.get("MODEL_FILES", "").strip(),
        enabled_models=enabled,
        job_timeout_s=_float(env, "JOB_TIMEOUT_S", 1800.0),
        max_input_bytes=_int(env, "MAX_INPUT_BYTES", 200 * 1024 * 1024),
        http_attempts=max(1, _int(env, "HTTP_ATTEMPTS", 4)),
        http_backoff_s=_float(env, "HTTP_BACKOFF_S", 0.5),
        work_dir=env.get("WORK_DIR", ""),
        lora_cache_bytes=max(0, _int(env, "LORA_CACHE_BYTES", 20 * 1024**3)),
    )


SETTINGS = load_settings()
