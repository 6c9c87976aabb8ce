#!/usr/bin/env bash
# Container entrypoint: find the network volume, check every model file the enabled models need, point ComfyUI's
# model paths at the volume, then exec `python -m gpu_worker`, which starts ComfyUI, waits until it answers (failing
# fast if it dies) and owns it from then on.
set -euo pipefail

log() { printf '{"event":"entrypoint","message":"%s"}\n' "$*"; }
die() { printf '{"event":"fatal","message":"%s"}\n' "$*"; exit 1; }

COMFY_DIR="${COMFY_DIR:-/comfyui}"
COMFY_PORT="${COMFY_PORT:-8188}"
ENABLED_MODELS="${ENABLED_MODELS:-preview}"
ENABLED_MODELS="${ENABLED_MODELS// /}"
export ENABLED_MODELS
APP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"  # /app in the image

# 1. The network volume: /runpod-volume (serverless) or /workspace (pods).
VOLUME=""
for candidate in /runpod-volume /workspace; do
  if [[ -d "$candidate" ]]; then VOLUME="$candidate"; break; fi
done
export MODELS_ROOT="${MODELS_ROOT:-${VOLUME:+$VOLUME/models}}"

needs_comfy=false
[[ ",$ENABLED_MODELS," == *",wan2.2-"* ]] && needs_comfy=true

if $needs_comfy; then
  [[ -n "$VOLUME" || -n "${MODELS_ROOT:-}" ]] || die "no network volume at /runpod-volume or /workspace and MODELS_ROOT unset: attach the volume holding the models"
  # 2. Every model file, named when missing or when it would not load: size, safetensors header (the list comes
  #    from the workflow templates and model-files.json; gpu_worker/models.py).
  problems="$(cd "$APP_DIR" && python -c 'import os
from gpu_worker.config import COMFY_MODELS
from gpu_worker.models import describe, file_problems
models = [m for m in os.environ["ENABLED_MODELS"].split(",") if m in COMFY_MODELS]
print(describe(file_problems(models, os.environ["MODELS_ROOT"])))')"
  if [[ -n "$problems" ]]; then
    die "model files under $MODELS_ROOT will not load: $problems (fill the volume: $APP_DIR/scripts/download_models.sh --root $MODELS_ROOT ${ENABLED_MODELS//,/ })"
  fi

  # 3. Our model paths pointed at the volume found above. Written outside COMFY_DIR: ComfyUI also loads an
  #    extra_model_paths.yaml lying in its own folder, and the same paths registered twice would be listed twice.
  COMFY_MODEL_PATHS="${TMPDIR:-/tmp}/reelgate_model_paths.yaml"
  sed "s#base_path: .*#base_path: ${MODELS_ROOT}#" "$APP_DIR/extra_model_paths.yaml" > "$COMFY_MODEL_PATHS"
  export COMFY_DIR COMFY_MODEL_PATHS
  export COMFY_URL="http://127.0.0.1:$COMFY_PORT"
  # 4. The worker starts ComfyUI itself (gpu_worker/comfy_process.py): it waits for it to answer, fails at once if
  #    it dies, and restarts it when a canceled prompt will not stop within COMFY_CANCEL_BOUND_S.
  log "ComfyUI will listen on 127.0.0.1:$COMFY_PORT"
fi

# 5. The worker: RunPod serverless loop or, with DEPLOYMENT_MODE=pod, the HTTP server. Arguments pass through
#    (e.g. --test_input '{"input": ...}' or --rp_serve_api).
cd "$APP_DIR"
exec python -m gpu_worker "$@"
