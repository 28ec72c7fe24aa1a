#!/usr/bin/env bash
# cap-prune with spark-submit in Spark local mode: driver and "executor" are one JVM on this machine.
#   deploy/spark-submit-local.sh [options] -- run --conf task=sst2 --conf model=DIR --conf data-dir=DIR --output DIR
# Local mode runs one task at a time (spark.task.cpus = the cores given to local[N]), as DJL needs.
# bin/cap-prune does the same without a Spark installation; this wrapper is for a machine that has
# one and wants the exact spark-submit path of the cluster wrappers.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cap_usage() {
  echo "usage: $(basename "$0") [options] -- COMMAND [job options]"
  echo "Spark local mode: --executor-cores N gives local[N]; --executors and --executor-memory do not apply"
  echo "(the driver is the executor: size it with --driver-memory)."
  echo
  cap_common_usage
}

cap_mode_master_args() {
  SUBMIT_ARGS+=(--master "local[$EXECUTOR_CORES]")
}

cap_mode_sizing_args() { :; }

cap_mode_check() {
  if [[ "$GPUS" == 1 ]]; then
    cap_die "--gpus: Spark local mode does not assign GPUs to tasks, so the job would run on the CPU;" \
      "run a one-node standalone cluster (deploy/spark-submit-standalone.sh) whose worker offers the GPUs"
  fi
}

cap_main "$@"
