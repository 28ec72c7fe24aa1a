#!/usr/bin/env bash
# cap-prune on a Spark standalone cluster.
#   deploy/spark-submit-standalone.sh --master spark://HOST:7077 [options] -- run --conf ... --output hdfs://.../run
# Executors: --executors x --executor-cores is asked for as --total-executor-cores, so the master
# starts exactly --executors executors. GPUs: each worker must offer them
# (SPARK_WORKER_OPTS="-Dspark.worker.resource.gpu.amount=N -Dspark.worker.resource.gpu.discoveryScript=...").
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cap_usage() {
  echo "usage: $(basename "$0") --master spark://HOST:PORT [options] -- COMMAND [job options]"
  echo "  --master URL            the standalone master [CAP_PRUNE_MASTER]"
  echo "  --deploy-mode MODE      client (driver here, default) or cluster (driver on a worker) [CAP_PRUNE_DEPLOY_MODE]"
  echo
  cap_common_usage
}

cap_mode_defaults() {
  MASTER="${CAP_PRUNE_MASTER:-}"
  DEPLOY_MODE="${CAP_PRUNE_DEPLOY_MODE:-client}"
}

cap_mode_option() {
  case "$1" in
    --master) MASTER="$2"; return 1 ;;
    --deploy-mode) DEPLOY_MODE="$2"; return 1 ;;
  esac
  return 2
}

cap_mode_check() {
  [[ -n "$MASTER" ]] || cap_die "--master spark://HOST:PORT is required (or CAP_PRUNE_MASTER)"
  [[ "$MASTER" == spark://* ]] || cap_die "--master: a standalone master URL starts with spark://, got '$MASTER'"
  [[ "$DEPLOY_MODE" == client || "$DEPLOY_MODE" == cluster ]] \
    || cap_die "--deploy-mode: expected client or cluster, got '$DEPLOY_MODE'"
}

cap_mode_master_args() {
  SUBMIT_ARGS+=(--master "$MASTER" --deploy-mode "$DEPLOY_MODE")
}

cap_mode_sizing_args() {
  SUBMIT_ARGS+=(--executor-cores "$EXECUTOR_CORES" --executor-memory "$EXECUTOR_MEMORY"
    --total-executor-cores "$((EXECUTORS * EXECUTOR_CORES))")
}

cap_main "$@"
