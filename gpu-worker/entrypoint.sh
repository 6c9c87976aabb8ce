#!/usr/bin/env bash
# Container entrypoint: find the network volume, check every model file the enabled models need, start ComfyUI,
# wait until it answers (failing fast if it dies), then exec `python -m gpu_worker` (which waits for it too).
set -euo pipefail

log() { printf '{"event":"entrypoint","message":"%s"}\n' "$*"; }
die() { printf '{"event":"fatal","message":"%s"}\n' "$*"; exit 1; }

COMFY_DIR="${COMFY_DIR:-/comfyui}"
COMFY_PORT="${COMFY_PORT:-8188}"
COMFY_START_TIMEOUT_S="${COMFY_START_TIMEOUT_S:-600}"
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
  # 2. Every model file, named when missing (the list comes from the workflow templates).
  missing="$(cd "$APP_DIR" && python -c 'import os
from gpu_worker.config import COMFY_MODELS
from gpu_worker.models import missing_files
models = [m for m in os.environ["ENABLED_MODELS"].split(",") if m in COMFY_MODELS]
print(" ".join(missing_files(models, os.environ["MODELS_ROOT"])))')"
  if [[ -n "$missing" ]]; then
    die "missing model files under $MODELS_ROOT: $missing (fill the volume: $APP_DIR/scripts/download_models.sh --root $MODELS_ROOT ${ENABLED_MODELS//,/ })"
  fi

  # 3. ComfyUI with our model paths pointed at the volume found above.
  sed "s#base_path: .*#base_path: ${MODELS_ROOT}#" "$APP_DIR/extra_model_paths.yaml" > "$COMFY_DIR/extra_model_paths.yaml"
  log "starting ComfyUI on 127.0.0.1:$COMFY_PORT"
  python "$COMFY_DIR/main.py" --listen 127.0.0.1 --port "$COMFY_PORT" --disable-auto-launch --disable-metadata \
    --extra-model-paths-config "$COMFY_DIR/extra_model_paths.yaml" &
  COMFY_PID=$!
  export COMFY_PID
  echo "$COMFY_PID" > /tmp/comfyui.pid

  # 4. Wait healthy until the deadline; a dead ComfyUI fails now, not at the deadline.
  deadline=$(( $(date +%s) + ${COMFY_START_TIMEOUT_S%.*} ))
  until curl -fs -o /dev/null "http://127.0.0.1:$COMFY_PORT/system_stats"; do
    kill -0 "$COMFY_PID" 2>/dev/null || die "ComfyUI (pid $COMFY_PID) exited during startup; see its log above"
    (( $(date +%s) < deadline )) || die "ComfyUI not ready after ${COMFY_START_TIMEOUT_S}s"
    sleep 1
  done
  log "ComfyUI ready"
  export COMFY_URL="http://127.0.0.1:$COMFY_PORT"
fi

# 5. The worker: RunPod serverless loop or, with DEPLOYMENT_MODE=pod, the HTTP server. Arguments pass through
#    (e.g. --test_input '{"input": ...}' or --rp_serve_api).
cd "$APP_DIR"
exec python -m gpu_worker "$@"
