#!/usr/bin/env bash
# Fills a network volume once with the model files the given models need (read from workflows/<model>.json),
# from Comfy-Org's repackaged Hugging Face repos. Resumable (curl -C -), skips complete files, verifies each
# file's size against the server's Content-Length and its sha256 when one is listed in SHA256SUMS below.
#
#   scripts/download_models.sh [--root /runpod-volume/models] wan2.2-i2v [wan2.2-s2v]
#
# HF_TOKEN (optional) is sent as a bearer token and never printed.
set -euo pipefail

ROOT="${MODELS_ROOT:-}"
MODELS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) MODELS+=("$1"); shift ;;
  esac
done
if [[ -z "$ROOT" ]]; then
  for candidate in /runpod-volume /workspace; do [[ -d "$candidate" ]] && ROOT="$candidate/models" && break; done
fi
[[ -n "$ROOT" ]] || { echo "no --root given and no /runpod-volume or /workspace found" >&2; exit 1; }
[[ ${#MODELS[@]} -gt 0 ]] || { echo "usage: $0 [--root DIR] MODEL..." >&2; exit 1; }

HERE="$(cd "$(dirname "$0")/.." && pwd)"
HF="https://huggingface.co/Comfy-Org"
# Known sha256 values ("folder/file sha256"); files not listed are checked by size only.
SHA256SUMS=""
AUTH=()
[[ -n "${HF_TOKEN:-}" ]] && AUTH=(-H "Authorization: Bearer ${HF_TOKEN}")

source_url() {  # folder file -> URL. The text encoder and VAE come from the Wan 2.1 repackage.
  case "$1" in
    text_encoders|vae) echo "$HF/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/$1/$2" ;;
    *) echo "$HF/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/$1/$2" ;;
  esac
}

files_for() {  # model -> "folder/file" lines, from the workflow template
  python3 - "$HERE/workflows/$1.json" <<'PY'
import json, sys
for folder, names in json.load(open(sys.argv[1]))["required_files"].items():
    for name in names:
        print(f"{folder}/{name}")
PY
}

failed=0
for model in "${MODELS[@]}"; do
  [[ "$model" == "preview" ]] && continue
  [[ -f "$HERE/workflows/$model.json" ]] || { echo "unknown model $model" >&2; exit 1; }
  while read -r rel; do
    folder="${rel%%/*}"; name="${rel#*/}"; dest="$ROOT/$rel"; url="$(source_url "$folder" "$name")"
    mkdir -p "$(dirname "$dest")"
    expected="$(curl -fsSIL "${AUTH[@]}" "$url" | tr -d '\r' | awk 'tolower($1)=="content-length:" {n=$2} END {print n}')"
    have="$(stat -c %s "$dest" 2>/dev/null || echo 0)"
    if [[ -n "$expected" && "$have" == "$expected" ]]; then
      echo "ok       $rel ($have bytes)"
    else
      echo "fetching $rel ($have of ${expected:-?} bytes present)"
      curl -fL -C - --retry 5 --retry-delay 5 --progress-bar "${AUTH[@]}" -o "$dest" "$url"
      have="$(stat -c %s "$dest")"
      if [[ -n "$expected" && "$have" != "$expected" ]]; then
        echo "SIZE MISMATCH $rel: $have bytes, expected $expected" >&2; failed=1; continue
      fi
    fi
    sum="$(awk -v f="$rel" '$1==f {print $2}' <<<"$SHA256SUMS")"
    if [[ -n "$sum" ]] && ! echo "$sum  $dest" | sha256sum -c --quiet -; then
      echo "SHA256 MISMATCH $rel" >&2; failed=1
    fi
  done < <(files_for "$model")
done
exit "$failed"
