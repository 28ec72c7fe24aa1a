#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript, or the worker's
# spark.worker.resource.gpu.discoveryScript): prints this node's GPUs in Spark's resource format,
#   {"name": "gpu", "addresses": ["0","1"]}
# from `nvidia-smi --query-gpu=index --format=csv,noheader`. On a node without nvidia-smi it prints
# an empty list, {"name": "gpu", "addresses": []}, and exits 0: Spark then reports that the executor
# has fewer GPUs than requested and refuses to start it, which names the real problem, instead of
# a script error that does not. A failing nvidia-smi (driver not loaded) exits non-zero with its message.
#
# CUDA_VISIBLE_DEVICES (YARN without GPU isolation, some container runtimes): nvidia-smi ignores it
# and lists every GPU of the node, but CUDA in this process sees only the listed ones. When it is
# set, only the GPUs it lists (physical indices, in its order, up to the first entry CUDA would stop
# at) are reported, so that Spark never assigns a GPU the executor cannot use; the job then maps the
# assigned index to its position in the list (io.capprune.spark.worker.GpuAddresses). A list of
# GPU UUIDs or MIG ids cannot be matched with indices: the script exits 1 saying so.
set -euo pipefail

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo '{"name": "gpu", "addresses": []}'
  exit 0
fi

if ! out="$(nvidia-smi --query-gpu=index --format=csv,noheader 2>&1)"; then
  echo "gpu-discovery.sh: nvidia-smi failed: $out" >&2
  exit 1
fi

indices=()
while IFS= read -r line; do
  index="${line//[[:space:]]/}"
  [[ -z "$index" ]] && continue
  if [[ ! "$index" =~ ^[0-9]+$ ]]; then
    echo "gpu-discovery.sh: unexpected line from nvidia-smi: '$line'" >&2
    exit 1
  fi
  indices+=("$index")
done <<<"$out"

if [[ -n "${CUDA_VISIBLE_DEVICES+set}" ]]; then
  visible=()
  IFS=',' read -r -a entries <<<"$CUDA_VISIBLE_DEVICES,"
  for entry in "${entries[@]}"; do
    entry="${entry//[[:space:]]/}"
    # CUDA stops at the first entry that is not a device: empty, or negative (-1 hides the rest).
    [[ -z "$entry" || "$entry" == -* ]] && break
    if [[ ! "$entry" =~ ^[0-9]+$ ]]; then
      echo "gpu-discovery.sh: CUDA_VISIBLE_DEVICES='$CUDA_VISIBLE_DEVICES' lists '$entry', not a GPU index;" \
        "this script reports nvidia-smi's indices and cannot match UUIDs or MIG ids: list indices instead" >&2
      exit 1
    fi
    found=""
    for index in "${indices[@]+"${indices[@]}"}"; do
      (( 10#$index == 10#$entry )) && found="$index"
    done
    # A listed GPU that does not exist: CUDA stops there too.
    [[ -z "$found" ]] && break
    visible+=("$found")
  done
  indices=("${visible[@]+"${visible[@]}"}")
fi

addresses=""
for index in "${indices[@]+"${indices[@]}"}"; do
  addresses+="${addresses:+,}\"$index\""
done

echo "{\"name\": \"gpu\", \"addresses\": [$addresses]}"
