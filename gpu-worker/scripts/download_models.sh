#!/usr/bin/env bash
# Fills a network volume once with the model files the given models need: which files from workflows/<model>.json,
# where from and what each must be (size, sha256) from model-files.json. Resumes partial downloads (curl -C -),
# skips files already whole, and verifies each file: its size against model-files.json (else the server's
# Content-Length), its sha256 when listed, and its safetensors header (gpu_worker/models.py, as the health check).
# A file that fails is named and the script exits 1. `--print-pins` prints the size and sha256 of each file
# present, as model-files.json holds them, to pin a new or updated file.
#
#   scripts/download_models.sh [--root /runpod-volume/models] [--print-pins] wan2.2-i2v [wan2.2-s2v]
#
# HF_TOKEN (optional) is sent as a bearer token and never printed.
set -euo pipefail

ROOT="${MODELS_ROOT:-}"
MODELS=()
PRINT_PINS=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    --print-pins) PRINT_PINS=true; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) MODELS+=("$1"); shift ;;
  esac
done
if [[ -z "$ROOT" ]]; then
  for candidate in /runpod-volume /workspace; do [[ -d "$candidate" ]] && ROOT="$candidate/models" && break; done
fi
[[ -n "$ROOT" ]] || { echo "no --root given and no /runpod-volume or /workspace found" >&2; exit 1; }
[[ ${#MODELS[@]} -gt 0 ]] || { echo "usage: $0 [--root DIR] [--print-pins] MODEL..." >&2; exit 1; }

HERE="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
AUTH=()
[[ -n "${HF_TOKEN:-}" ]] && AUTH=(-H "Authorization: Bearer ${HF_TOKEN}")

plan() {  # model -> "folder/file<TAB>url<TAB>size or -<TAB>sha256 or -" lines
  (cd "$HERE" && "$PYTHON" - "$1" <<'PY'
import sys
from gpu_worker.models import model_files, required_files
listed = model_files()
for rel in required_files(sys.argv[1]):
    entry = listed.get(rel)
    if entry is None:
        sys.exit(f"{rel} is not in model-files.json")
    print(f"{rel}\t{entry.source}\t{entry.size or '-'}\t{entry.sha256 or '-'}")
PY
  )
}

load_problem() {  # path -> why it would not load, or nothing
  (cd "$HERE" && "$PYTHON" -c 'import sys
from pathlib import Path
from gpu_worker.models import safetensors_problem
print(safetensors_problem(Path(sys.argv[1])) or "")' "$1")
}

failed=0
for model in "${MODELS[@]}"; do
  [[ "$model" == "preview" ]] && continue
  [[ -f "$HERE/workflows/$model.json" ]] || { echo "unknown model $model" >&2; exit 1; }
  lines="$(plan "$model")"
  while IFS=$'\t' read -r rel url size sha; do
    dest="$ROOT/$rel"
    if $PRINT_PINS; then
      [[ -f "$dest" ]] && printf '%s\t%s\t%s\n' "$rel" "$(stat -c %s "$dest")" "$(sha256sum "$dest" | cut -d' ' -f1)"
      continue
    fi
    mkdir -p "$(dirname "$dest")"
    expected="$size"
    if [[ "$expected" == "-" ]]; then  # not pinned yet: the server's word for the size
      expected="$(curl -fsSIL "${AUTH[@]}" "$url" | tr -d '\r' | awk 'tolower($1)=="content-length:" {n=$2} END {print n}')"
    fi
    have="$(stat -c %s "$dest" 2>/dev/null || echo 0)"
    if [[ -n "$expected" && "$have" == "$expected" ]]; then
      echo "present  $rel ($have bytes)"
    else
      if [[ -n "$expected" && "$have" -gt "$expected" ]]; then
        echo "larger than expected, fetching again: $rel" && rm -f "$dest" && have=0
      fi
      echo "fetching $rel ($have of ${expected:-?} bytes present)"
      curl -fL -C - --retry 5 --retry-delay 5 --progress-bar "${AUTH[@]}" -o "$dest" "$url" || {
        echo "DOWNLOAD FAILED $rel (run again to resume)" >&2; failed=1; continue; }
      have="$(stat -c %s "$dest")"
    fi
    if [[ -n "$expected" && "$have" != "$expected" ]]; then
      echo "SIZE MISMATCH $rel: $have bytes, expected $expected" >&2; failed=1; continue
    fi
    if [[ "$sha" != "-" ]] && ! echo "$sha  $dest" | sha256sum -c --quiet - >/dev/null 2>&1; then
      echo "SHA256 MISMATCH $rel: delete it and run again" >&2; failed=1; continue
    fi
    problem="$(load_problem "$dest")"
    if [[ -n "$problem" ]]; then
      echo "WILL NOT LOAD $rel: $problem" >&2; failed=1; continue
    fi
    echo "ok       $rel"
  done <<<"$lines"
done
exit "$failed"
