#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript, or the worker's
# spark.worker.resource.gpu.discoveryScript): prints this node's GPUs in Spark's resource format,
#   {"name": "gpu", "addresses": ["0","1"]}
# from `nvidia-smi --query-gpu=index --format=csv,noheader`. On a node without nvidia-smi it prints
# an empty list, {"name": "gpu", "addresses": []}, and exits 0: Spark then reports that the executor
# has fewer GPUs than requested and refuses to start it, which names the real problem, instead of
# a script error that does not. A failing nvidia-smi (driver not loaded) exits non-zero with its message.
set -euo pipefail

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo '{"name": "gpu", "addresses": []}'
  exit 0
fi

if ! out="$(nvidia-smi --query-gpu=index --format=csv,noheader 2>&1)"; then
  echo "gpu-discovery.sh: nvidia-smi failed: $out" >&2
  exit 1
fi

addresses=""
while IFS= read -r line; do
  index="${line//[[:space:]]/}"
  [[ -z "$index" ]] && continue
  if [[ ! "$index" =~ ^[0-9]+$ ]]; then
    echo "gpu-discovery.sh: unexpected line from nvidia-smi: '$line'" >&2
    exit 1
  fi
  addresses+="${addresses:+,}\"$index\""
done <<<"$out"

echo "{\"name\": \"gpu\", \"addresses\": [$addresses]}"
