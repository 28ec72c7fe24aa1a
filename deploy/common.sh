# shellcheck shell=bash
# Shared by deploy/spark-submit-{local,standalone,yarn,k8s}.sh: option parsing, the Spark settings
# every cluster manager needs for this job, and the final exec (or --dry-run print).
#
# The job's constraints that every wrapper must carry (docs/operations-deploy.md explains them):
#  - one task per executor JVM: DJL allows one GradientCollector per JVM, so spark.task.cpus equals
#    spark.executor.cores, and on GPU clusters each executor and each task get exactly one GPU;
#  - DJL offline on the driver and on executors: otherwise it tries to download natives and calls a
#    cloud metadata address at start;
#  - libtorch is not inside cap-prune.jar: either the pytorch-native-cpu jar goes with --jars, or a
#    libtorch installed on the nodes is named by PYTORCH_LIBRARY_PATH. GPUs need the CUDA libtorch,
#    so --gpus and --driver-gpu are refused without --libtorch DIR or --image-has-libtorch (the natives
#    jar is the CPU build: the job would find no GPU).
# Wrappers source this file, set CAP_MODE and their defaults, then call cap_main "$@".

set -euo pipefail

CAP_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAP_MAIN_CLASS="io.capprune.spark.cli.CapPruneMain"
CAP_PYTORCH_VERSION="2.7.1"
CAP_NATIVES_JAR_NAME="pytorch-native-cpu-${CAP_PYTORCH_VERSION}-linux-x86_64.jar"
CAP_DJL_JAVA_OPTS="-Dai.djl.offline=true -Dai.djl.default_engine=PyTorch"

cap_die() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}

cap_warn() {
  echo "$(basename "$0"): warning: $*" >&2
}

# Defaults from the environment (the wrappers' options override them).
cap_defaults() {
  APP_JAR="${CAP_PRUNE_APP_JAR:-$CAP_HOME/spark-job/target/cap-prune.jar}"
  EXECUTORS="${CAP_PRUNE_EXECUTORS:-2}"
  EXECUTOR_CORES="${CAP_PRUNE_EXECUTOR_CORES:-4}"
  EXECUTOR_MEMORY="${CAP_PRUNE_EXECUTOR_MEMORY:-8g}"
  EXECUTOR_MEMORY_OVERHEAD="${CAP_PRUNE_EXECUTOR_MEMORY_OVERHEAD:-}"
  DRIVER_MEMORY="${CAP_PRUNE_DRIVER_MEMORY:-8g}"
  GPUS="${CAP_PRUNE_GPUS:-0}"
  DRIVER_GPU="${CAP_PRUNE_DRIVER_GPU:-0}"
  DRIVER_CORES="${CAP_PRUNE_DRIVER_CORES:-}"
  IMAGE_HAS_LIBTORCH="${CAP_PRUNE_IMAGE_HAS_LIBTORCH:-0}"
  MAX_DIRECT_MEMORY="${CAP_PRUNE_MAX_DIRECT_MEMORY:-}"
  DISCOVERY_SCRIPT="${CAP_PRUNE_GPU_DISCOVERY_SCRIPT:-$CAP_HOME/deploy/gpu-discovery.sh}"
  NATIVES_JAR="${CAP_PRUNE_NATIVES_JAR:-$CAP_HOME/spark-job/target/lib/$CAP_NATIVES_JAR_NAME}"
  LIBTORCH="${CAP_PRUNE_LIBTORCH:-}"
  PYTORCH_FLAVOR_VALUE="${CAP_PRUNE_PYTORCH_FLAVOR:-}"
  DJL_CACHE="${CAP_PRUNE_DJL_CACHE_DIR:-}"
  LOG_CONFIG="${CAP_PRUNE_LOG_CONFIG:-$CAP_HOME/conf/log4j2.properties}"
  JOB_CONF_FILE=""
  APP_NAME="${CAP_PRUNE_APP_NAME:-cap-prune}"
  DRY_RUN=""
  SPARK_CONFS=()
  EXTRA_FILES=()
  JOB_ARGS=()
}

cap_common_usage() {
  cat <<EOF
Common options (environment variable in brackets):
  --app-jar PATH            the application jar [CAP_PRUNE_APP_JAR] (default $CAP_HOME/spark-job/target/cap-prune.jar)
  --executors N             executors [CAP_PRUNE_EXECUTORS] (default 2)
  --executor-cores N        cores per executor; also spark.task.cpus, so one task per executor [CAP_PRUNE_EXECUTOR_CORES] (default 4)
  --executor-memory SIZE    heap per executor, e.g. 8g [CAP_PRUNE_EXECUTOR_MEMORY] (default 8g)
  --executor-memory-overhead SIZE
                            off-heap per executor (libtorch allocates there) [CAP_PRUNE_EXECUTOR_MEMORY_OVERHEAD]
  --driver-memory SIZE      driver heap [CAP_PRUNE_DRIVER_MEMORY] (default 8g)
  --driver-cores N          driver cores, cluster deploy mode [CAP_PRUNE_DRIVER_CORES]
  --max-direct-memory SIZE  -XX:MaxDirectMemorySize of driver and executors, e.g. 2g: caps the JVM's
                            direct buffers (Netty, DJL transfers) inside the memory overhead [CAP_PRUNE_MAX_DIRECT_MEMORY]
  --gpus                    one GPU per executor and per task; needs --libtorch or --image-has-libtorch [CAP_PRUNE_GPUS=1]
  --driver-gpu              one GPU for the driver (spark.driver.resource.gpu.*); same libtorch rule [CAP_PRUNE_DRIVER_GPU=1]
  --discovery-script PATH   GPU discovery script as seen by the executors [CAP_PRUNE_GPU_DISCOVERY_SCRIPT]
  --natives-jar PATH        libtorch CPU natives jar shipped with --jars [CAP_PRUNE_NATIVES_JAR]
                            (default $CAP_HOME/spark-job/target/lib/$CAP_NATIVES_JAR_NAME)
  --libtorch DIR            use the libtorch installed at DIR on every node instead of --jars
                            (PYTORCH_LIBRARY_PATH) [CAP_PRUNE_LIBTORCH]
  --pytorch-flavor F        libtorch flavour at --libtorch: cpu or cu128 [CAP_PRUNE_PYTORCH_FLAVOR]
                            (default cu128 with --gpus or --driver-gpu, else cpu)
  --image-has-libtorch      the image / nodes set PYTORCH_LIBRARY_PATH (and PYTORCH_VERSION, PYTORCH_FLAVOR)
                            themselves: no natives jar is shipped and no PYTORCH_* is set [CAP_PRUNE_IMAGE_HAS_LIBTORCH=1]
  --djl-cache DIR           DJL_CACHE_DIR on executors: where DJL unpacks natives (must be writable) [CAP_PRUNE_DJL_CACHE_DIR]
  --log-config FILE         log4j2 configuration of the driver [CAP_PRUNE_LOG_CONFIG] (default conf/log4j2.properties)
  --name NAME               Spark application name [CAP_PRUNE_APP_NAME] (default cap-prune)
  --spark-conf KEY=VALUE    any other Spark property, repeatable
  --dry-run                 print the spark-submit command, one argument per line, and exit
  --dry-run=shell           print it shell-quoted on one line, and exit
  -- COMMAND [ARGS...]      everything after -- goes to the job: run|finetune|prune|evaluate|export|demo|inspect
                            and its options (--config, --conf key=value, --output, --resume, --overwrite)
Spark itself: SPARK_SUBMIT names the spark-submit to run, else \$SPARK_HOME/bin/spark-submit, else PATH.
EOF
}

# Parses the options every wrapper shares. A wrapper handles its own options first through
# cap_mode_option NAME VALUE_OR_EMPTY, which returns 0 (no value used), 1 (value used) or 2 (unknown).
cap_parse() {
  while [[ $# -gt 0 ]]; do
    local opt="$1"
    case "$opt" in
      --) shift; JOB_ARGS=("$@"); return 0 ;;
      --help|-h) cap_usage; exit 0 ;;
      --dry-run) DRY_RUN=lines ;;
      --dry-run=shell) DRY_RUN=shell ;;
      --gpus) GPUS=1 ;;
      --driver-gpu) DRIVER_GPU=1 ;;
      --image-has-libtorch) IMAGE_HAS_LIBTORCH=1 ;;
      --app-jar|--executors|--executor-cores|--executor-memory|--executor-memory-overhead|--driver-memory|\
      --discovery-script|--natives-jar|--libtorch|--pytorch-flavor|--djl-cache|--log-config|--name|--spark-conf|\
      --driver-cores|--max-direct-memory)
        [[ $# -ge 2 ]] || cap_die "$opt needs a value"
        local v="$2"
        case "$opt" in
          --app-jar) APP_JAR="$v" ;;
          --executors) EXECUTORS="$v" ;;
          --executor-cores) EXECUTOR_CORES="$v" ;;
          --executor-memory) EXECUTOR_MEMORY="$v" ;;
          --executor-memory-overhead) EXECUTOR_MEMORY_OVERHEAD="$v" ;;
          --driver-memory) DRIVER_MEMORY="$v" ;;
          --driver-cores) DRIVER_CORES="$v" ;;
          --max-direct-memory) MAX_DIRECT_MEMORY="$v" ;;
          --discovery-script) DISCOVERY_SCRIPT="$v" ;;
          --natives-jar) NATIVES_JAR="$v" ;;
          --libtorch) LIBTORCH="$v" ;;
          --pytorch-flavor) PYTORCH_FLAVOR_VALUE="$v" ;;
          --djl-cache) DJL_CACHE="$v" ;;
          --log-config) LOG_CONFIG="$v" ;;
          --name) APP_NAME="$v" ;;
          --spark-conf)
            [[ "$v" == *=* && "${v%%=*}" != "" ]] || cap_die "--spark-conf expects KEY=VALUE, got '$v'"
            SPARK_CONFS+=("$v") ;;
        esac
        shift ;;
      *)
        local used=0
        cap_mode_option "$opt" "${2-}" || used=$?
        case "$used" in
          0) ;;
          1) [[ $# -ge 2 ]] || cap_die "$opt needs a value"; shift ;;
          *) cap_die "unknown option '$opt' (job arguments go after --; see --help)" ;;
        esac ;;
    esac
    shift
  done
}

cap_check_common() {
  [[ "$EXECUTORS" =~ ^[1-9][0-9]*$ ]] || cap_die "--executors: expected a positive integer, got '$EXECUTORS'"
  [[ "$EXECUTOR_CORES" =~ ^[1-9][0-9]*$ ]] || cap_die "--executor-cores: expected a positive integer, got '$EXECUTOR_CORES'"
  local size_re='^[1-9][0-9]*[kKmMgGtT]?$'
  [[ "$EXECUTOR_MEMORY" =~ $size_re ]] || cap_die "--executor-memory: expected a size like 8g, got '$EXECUTOR_MEMORY'"
  [[ "$DRIVER_MEMORY" =~ $size_re ]] || cap_die "--driver-memory: expected a size like 8g, got '$DRIVER_MEMORY'"
  if [[ -n "$EXECUTOR_MEMORY_OVERHEAD" && ! "$EXECUTOR_MEMORY_OVERHEAD" =~ $size_re ]]; then
    cap_die "--executor-memory-overhead: expected a size like 4g, got '$EXECUTOR_MEMORY_OVERHEAD'"
  fi
  [[ "$GPUS" == 0 || "$GPUS" == 1 ]] \
    || cap_die "CAP_PRUNE_GPUS: expected 0 or 1 (one GPU per executor and per task), got '$GPUS'"
  [[ "$DRIVER_GPU" == 0 || "$DRIVER_GPU" == 1 ]] \
    || cap_die "CAP_PRUNE_DRIVER_GPU: expected 0 or 1, got '$DRIVER_GPU'"
  [[ "$IMAGE_HAS_LIBTORCH" == 0 || "$IMAGE_HAS_LIBTORCH" == 1 ]] \
    || cap_die "CAP_PRUNE_IMAGE_HAS_LIBTORCH: expected 0 or 1, got '$IMAGE_HAS_LIBTORCH'"
  if [[ -n "$DRIVER_CORES" && ! "$DRIVER_CORES" =~ ^[1-9][0-9]*$ ]]; then
    cap_die "--driver-cores: expected a positive integer, got '$DRIVER_CORES'"
  fi
  if [[ -n "$MAX_DIRECT_MEMORY" && ! "$MAX_DIRECT_MEMORY" =~ $size_re ]]; then
    cap_die "--max-direct-memory: expected a size like 2g, got '$MAX_DIRECT_MEMORY'"
  fi
  [[ ${#JOB_ARGS[@]} -gt 0 ]] \
    || cap_die "no job command: put it after --, e.g. -- run --conf task=sst2 --output DIR"
  if [[ -n "$LIBTORCH" ]]; then
    [[ -z "$PYTORCH_FLAVOR_VALUE" ]] && { [[ "$GPUS" == 1 || "$DRIVER_GPU" == 1 ]] && PYTORCH_FLAVOR_VALUE=cu128 || PYTORCH_FLAVOR_VALUE=cpu; }
    [[ "$PYTORCH_FLAVOR_VALUE" =~ ^(cpu|cu[0-9]+)$ ]] \
      || cap_die "--pytorch-flavor: expected cpu or cuNNN (e.g. cu128), got '$PYTORCH_FLAVOR_VALUE'"
  elif [[ -n "$PYTORCH_FLAVOR_VALUE" ]]; then
    cap_die "--pytorch-flavor only applies with --libtorch DIR (the natives jar is the CPU build)"
  fi
}

# GPUs need the CUDA libtorch; checked after the wrapper's own checks (local mode refuses --gpus first).
cap_check_libtorch() {
  if [[ "$GPUS" == 1 || "$DRIVER_GPU" == 1 ]] && [[ -z "$LIBTORCH" && "$IMAGE_HAS_LIBTORCH" == 0 ]]; then
    local which="--gpus"
    [[ "$GPUS" == 1 ]] || which="--driver-gpu"
    cap_die "$which needs a CUDA libtorch: pass --libtorch DIR (libtorch 2.7.1+cu128 at DIR on every node or" \
      "in the image), or --image-has-libtorch if the image or the nodes set PYTORCH_LIBRARY_PATH themselves;" \
      "the natives jar shipped otherwise is the CPU build, so the job would find no GPU"
  fi
  if [[ -n "$LIBTORCH" && "$IMAGE_HAS_LIBTORCH" == 1 ]]; then
    cap_die "--libtorch and --image-has-libtorch: give one (--libtorch sets PYTORCH_LIBRARY_PATH, the other leaves it to the image)"
  fi
}

# A local file the submitting machine must read: missing is fatal, except in a dry run.
cap_need_local_file() {
  local what="$1" path="$2" hint="$3"
  case "$path" in
    *://*) return 0 ;;  # hdfs://, s3a://, local:// ...: resolved by Spark, not here
  esac
  if [[ ! -f "$path" ]]; then
    if [[ -n "$DRY_RUN" ]]; then
      cap_warn "$what $path does not exist ($hint)"
    else
      cap_die "$what $path does not exist ($hint)"
    fi
  fi
}

cap_spark_submit_path() {
  if [[ -n "${SPARK_SUBMIT:-}" ]]; then
    echo "$SPARK_SUBMIT"
  elif [[ -n "${SPARK_HOME:-}" ]]; then
    echo "$SPARK_HOME/bin/spark-submit"
  elif command -v spark-submit >/dev/null 2>&1; then
    command -v spark-submit
  else
    echo "spark-submit"
  fi
}

# ENV_ARGS: NAME=VALUE for the spark-submit process (and so for a client-mode driver).
# SUBMIT_ARGS: spark-submit's options up to, not including, the application jar.
cap_build() {
  ENV_ARGS=()
  SUBMIT_ARGS=()
  cap_mode_master_args  # --master, --deploy-mode and what only that cluster manager understands

  SUBMIT_ARGS+=(--class "$CAP_MAIN_CLASS" --name "$APP_NAME")
  SUBMIT_ARGS+=(--driver-memory "$DRIVER_MEMORY")
  [[ -n "$DRIVER_CORES" ]] && SUBMIT_ARGS+=(--driver-cores "$DRIVER_CORES")
  cap_mode_sizing_args
  # One task per executor: a task claims every core of its executor.
  SUBMIT_ARGS+=(--conf "spark.task.cpus=$EXECUTOR_CORES")
  if [[ -n "$EXECUTOR_MEMORY_OVERHEAD" ]]; then
    SUBMIT_ARGS+=(--conf "spark.executor.memoryOverhead=$EXECUTOR_MEMORY_OVERHEAD")
  fi

  local java_opts="$CAP_DJL_JAVA_OPTS"
  [[ -n "$MAX_DIRECT_MEMORY" ]] && java_opts="$java_opts -XX:MaxDirectMemorySize=$MAX_DIRECT_MEMORY"
  local driver_opts="$java_opts"
  LOG_REF=""
  cap_mode_log_config_ref
  [[ -n "$LOG_REF" ]] && driver_opts="$driver_opts -Dlog4j2.configurationFile=$LOG_REF"
  SUBMIT_ARGS+=(--conf "spark.driver.extraJavaOptions=$driver_opts")
  SUBMIT_ARGS+=(--conf "spark.executor.extraJavaOptions=$java_opts")
  SUBMIT_ARGS+=(--conf "spark.executorEnv.DJL_OFFLINE=true")
  cap_mode_driver_env DJL_OFFLINE true
  if [[ -n "$DJL_CACHE" ]]; then
    SUBMIT_ARGS+=(--conf "spark.executorEnv.DJL_CACHE_DIR=$DJL_CACHE")
  fi

  if [[ -n "$LIBTORCH" ]]; then
    # libtorch on the nodes: DJL loads it from PYTORCH_LIBRARY_PATH and takes the JNI glue of that
    # version and flavour from pytorch-jni (inside cap-prune.jar: cpu and cu128 for linux-x86_64).
    local kv
    for kv in "PYTORCH_LIBRARY_PATH=$LIBTORCH" "PYTORCH_VERSION=$CAP_PYTORCH_VERSION" "PYTORCH_FLAVOR=$PYTORCH_FLAVOR_VALUE"; do
      SUBMIT_ARGS+=(--conf "spark.executorEnv.$kv")
      cap_mode_driver_env "${kv%%=*}" "${kv#*=}"
    done
  elif [[ "$IMAGE_HAS_LIBTORCH" == 1 ]]; then
    :  # the image or the nodes set PYTORCH_LIBRARY_PATH, PYTORCH_VERSION and PYTORCH_FLAVOR
  else
    cap_need_local_file "natives jar" "$NATIVES_JAR" \
      "build it with: mvn -DskipTests package, or point --natives-jar at it, or use --libtorch DIR"
    SUBMIT_ARGS+=(--jars "$NATIVES_JAR")
  fi

  if [[ "$GPUS" == 1 ]]; then
    cap_mode_gpu_args
    SUBMIT_ARGS+=(--conf "spark.executor.resource.gpu.amount=1")
    SUBMIT_ARGS+=(--conf "spark.task.resource.gpu.amount=1")
    DISCOVERY_REF=""
    cap_mode_discovery_ref
    SUBMIT_ARGS+=(--conf "spark.executor.resource.gpu.discoveryScript=$DISCOVERY_REF")
    # One shard per GPU executor for the whole run: the executors must not come and go.
    SUBMIT_ARGS+=(--conf "spark.dynamicAllocation.enabled=false")
  fi
  if [[ "$DRIVER_GPU" == 1 ]]; then
    cap_mode_driver_gpu_args
    SUBMIT_ARGS+=(--conf "spark.driver.resource.gpu.amount=1")
    DRIVER_DISCOVERY_REF=""
    cap_mode_driver_discovery_ref
    SUBMIT_ARGS+=(--conf "spark.driver.resource.gpu.discoveryScript=$DRIVER_DISCOVERY_REF")
  fi

  local c
  for c in "${SPARK_CONFS[@]+"${SPARK_CONFS[@]}"}"; do
    SUBMIT_ARGS+=(--conf "$c")
  done
  if [[ ${#EXTRA_FILES[@]} -gt 0 ]]; then
    local IFS=,
    SUBMIT_ARGS+=(--files "${EXTRA_FILES[*]}")
  fi
}

cap_main() {
  cap_defaults
  cap_mode_defaults
  cap_parse "$@"
  cap_check_common
  cap_mode_check
  cap_check_libtorch
  cap_need_local_file "application jar" "$APP_JAR" "build it with: mvn -DskipTests package, or pass --app-jar"
  cap_build
  local cmd=(env "${ENV_ARGS[@]}" "$(cap_spark_submit_path)" "${SUBMIT_ARGS[@]}" "$APP_JAR" "${JOB_ARGS[@]}")
  case "$DRY_RUN" in
    lines) printf '%s\n' "${cmd[@]}"; exit 0 ;;
    shell) printf '%q ' "${cmd[@]}" | sed 's/ $//'; echo; exit 0 ;;
  esac
  local submit
  submit="$(cap_spark_submit_path)"
  if [[ "$submit" == spark-submit ]] || [[ ! -x "$submit" ]]; then
    cap_die "no spark-submit at '$submit': set SPARK_HOME (Spark 4.2.0, Scala 2.13) or SPARK_SUBMIT"
  fi
  exec "${cmd[@]}"
}

# Defaults for the per-mode hooks; wrappers override what differs.
cap_mode_defaults() { :; }
cap_mode_option() { return 2; }
cap_mode_check() { :; }
cap_mode_sizing_args() {
  SUBMIT_ARGS+=(--num-executors "$EXECUTORS" --executor-cores "$EXECUTOR_CORES" --executor-memory "$EXECUTOR_MEMORY")
}
cap_mode_gpu_args() { :; }
cap_mode_driver_gpu_args() { :; }
# Client mode: the driver is this process's child, so the environment reaches it directly.
cap_mode_driver_env() { ENV_ARGS+=("$1=$2"); }
# Sets LOG_REF: how the driver names the log configuration (empty: Spark's default).
cap_mode_log_config_ref() {
  if [[ -n "$LOG_CONFIG" ]]; then
    cap_need_local_file "log configuration" "$LOG_CONFIG" "pass --log-config FILE"
    LOG_REF="$LOG_CONFIG"
  fi
}
# Sets DISCOVERY_REF: the discovery script's path as the executors see it.
cap_mode_discovery_ref() { DISCOVERY_REF="$DISCOVERY_SCRIPT"; }
# Sets DRIVER_DISCOVERY_REF: the discovery script's path as the driver sees it.
cap_mode_driver_discovery_ref() { DRIVER_DISCOVERY_REF="$DISCOVERY_SCRIPT"; }
