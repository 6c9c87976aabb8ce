"""Reelgate GPU worker: RunPod Serverless handler and pod-mode server driving ComfyUI (Wan 2.2)."""

import os

# The runpod SDK logs whole job inputs (signed URLs) at DEBUG, its default level, and fixes its level when first
# imported: set INFO here, before any module of ours can import it. An explicit RUNPOD_LOG_LEVEL still wins.
os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")
