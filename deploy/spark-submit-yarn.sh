#!/usr/bin/env bash
# cap-prune on YARN, driver in the cluster (--deploy-mode cluster).
#   deploy/spark-submit-yarn.sh [options] [--job-conf my-run.conf] -- run --output hdfs:///runs/sst2
# --job-conf ships a HOCON file with --files and passes "--config <its name>" to the job, which
# reads it from the container's working directory. In cluster mode the driver's environment comes
# from spark.yarn.appMasterEnv.*, and the log configuration is shipped the same way as the job conf.
# GPUs: YARN must offer the yarn.io/gpu resource type; Spark maps spark.executor.resource.gpu.amount
# to it, and the discovery script is shipped with --files and run from the container directory.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cap_usage() {
  echo "usage: $(basename "$0") [options] -- COMMAND [job options]"
  echo "  --deploy-mode MODE      cluster (default) or client [CAP_PRUNE_DEPLOY_MODE]"
  echo "  --queue NAME            YARN queue [CAP_PRUNE_YARN_QUEUE]"
  echo "  --job-conf FILE         a job HOCON file: shipped with --files, passed to the job as --config NAME"
  echo
  cap_common_usage
}

cap_mode_defaults() {
  DEPLOY_MODE="${CAP_PRUNE_DEPLOY_MODE:-cluster}"
  QUEUE="${CAP_PRUNE_YARN_QUEUE:-}"
}

cap_mode_option() {
  case "$1" in
    --deploy-mode) DEPLOY_MODE="$2"; return 1 ;;
    --queue) QUEUE="$2"; return 1 ;;
    --job-conf) JOB_CONF_FILE="$2"; return 1 ;;
  esac
  return 2
}

cap_mode_check() {
  [[ "$DEPLOY_MODE" == client || "$DEPLOY_MODE" == cluster ]] \
    || cap_die "--deploy-mode: expected client or cluster, got '$DEPLOY_MODE'"
  if [[ -n "$JOB_CONF_FILE" ]]; then
    cap_need_local_file "job configuration" "$JOB_CONF_FILE" "--job-conf names a local HOCON file"
    EXTRA_FILES+=("$JOB_CONF_FILE")
    # The job's command stays first; its --config names the shipped copy in the working directory.
    JOB_ARGS=("${JOB_ARGS[0]}" --config "$(basename "$JOB_CONF_FILE")" "${JOB_ARGS[@]:1}")
  fi
}

cap_mode_master_args() {
  SUBMIT_ARGS+=(--master yarn --deploy-mode "$DEPLOY_MODE")
  [[ -n "$QUEUE" ]] && SUBMIT_ARGS+=(--queue "$QUEUE")
  return 0
}

cap_mode_driver_env() {
  if [[ "$DEPLOY_MODE" == cluster ]]; then
    SUBMIT_ARGS+=(--conf "spark.yarn.appMasterEnv.$1=$2")
  else
    ENV_ARGS+=("$1=$2")
  fi
}

cap_mode_log_config_ref() {
  [[ -n "$LOG_CONFIG" ]] || return 0
  cap_need_local_file "log configuration" "$LOG_CONFIG" "pass --log-config FILE"
  if [[ "$DEPLOY_MODE" == cluster ]]; then
    EXTRA_FILES+=("$LOG_CONFIG")
    LOG_REF="$(basename "$LOG_CONFIG")"
  else
    LOG_REF="$LOG_CONFIG"
  fi
}

cap_mode_discovery_ref() {
  cap_need_local_file "GPU discovery script" "$DISCOVERY_SCRIPT" "pass --discovery-script FILE"
  cap_ship_discovery_script
  DISCOVERY_REF="./$(basename "$DISCOVERY_SCRIPT")"
}

# The driver's GPU (--driver-gpu): in cluster mode the driver runs in the application master's
# container, which gets the shipped copy too; in client mode it runs here and uses the local script.
cap_mode_driver_discovery_ref() {
  cap_need_local_file "GPU discovery script" "$DISCOVERY_SCRIPT" "pass --discovery-script FILE"
  if [[ "$DEPLOY_MODE" == cluster ]]; then
    cap_ship_discovery_script
    DRIVER_DISCOVERY_REF="./$(basename "$DISCOVERY_SCRIPT")"
  else
    DRIVER_DISCOVERY_REF="$DISCOVERY_SCRIPT"
  fi
}

cap_ship_discovery_script() {
  local f
  for f in "${EXTRA_FILES[@]+"${EXTRA_FILES[@]}"}"; do
    [[ "$f" == "$DISCOVERY_SCRIPT" ]] && return 0
  done
  EXTRA_FILES+=("$DISCOVERY_SCRIPT")
}

cap_main "$@"
