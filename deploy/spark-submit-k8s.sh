#!/usr/bin/env bash
# cap-prune on Kubernetes, driver in a pod (--deploy-mode cluster).
#   deploy/spark-submit-k8s.sh --master k8s://https://API:6443 --image REGISTRY/cap-prune:0.1.0 \
#     --namespace ml --service-account spark [--gpus] -- run --conf ... --output s3a://bucket/runs/sst2
# The image (deploy/executor-image.md) holds the app jar, the natives jar, the log configuration
# and the discovery script under /opt/cap-prune, so their defaults here are local:// paths in it.
# Executors get deploy/k8s/executor-pod-template.yaml with --gpus (GPU limit, node selector,
# tolerations) and deploy/k8s/executor-pod-template-cpu.yaml without; spark-submit reads the
# template on this machine.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

IMAGE_ROOT=/opt/cap-prune

cap_usage() {
  echo "usage: $(basename "$0") --master k8s://https://HOST:PORT --image IMAGE [options] -- COMMAND [job options]"
  echo "  --master URL            the Kubernetes API server as k8s://https://HOST:PORT [CAP_PRUNE_K8S_MASTER]"
  echo "  --image IMAGE           container image of driver and executors [CAP_PRUNE_IMAGE]"
  echo "  --namespace NS          namespace of the pods [CAP_PRUNE_K8S_NAMESPACE] (default default)"
  echo "  --service-account SA    service account of the driver, allowed to create pods [CAP_PRUNE_K8S_SERVICE_ACCOUNT] (default spark)"
  echo "  --pod-template FILE     executor pod template [CAP_PRUNE_K8S_POD_TEMPLATE]"
  echo "                          (default deploy/k8s/executor-pod-template.yaml with --gpus, else executor-pod-template-cpu.yaml)"
  echo "  --driver-gpu uses deploy/k8s/driver-pod-template-gpu.yaml [CAP_PRUNE_K8S_DRIVER_POD_TEMPLATE]"
  echo "Defaults that point into the image: --app-jar local://$IMAGE_ROOT/cap-prune.jar,"
  echo "  --natives-jar local://$IMAGE_ROOT/lib/$CAP_NATIVES_JAR_NAME, --discovery-script $IMAGE_ROOT/gpu-discovery.sh,"
  echo "  --log-config $IMAGE_ROOT/conf/log4j2.properties"
  echo
  cap_common_usage
}

cap_mode_defaults() {
  MASTER="${CAP_PRUNE_K8S_MASTER:-}"
  IMAGE="${CAP_PRUNE_IMAGE:-}"
  NAMESPACE="${CAP_PRUNE_K8S_NAMESPACE:-default}"
  SERVICE_ACCOUNT="${CAP_PRUNE_K8S_SERVICE_ACCOUNT:-spark}"
  POD_TEMPLATE="${CAP_PRUNE_K8S_POD_TEMPLATE:-}"
  APP_JAR="${CAP_PRUNE_APP_JAR:-local://$IMAGE_ROOT/cap-prune.jar}"
  NATIVES_JAR="${CAP_PRUNE_NATIVES_JAR:-local://$IMAGE_ROOT/lib/$CAP_NATIVES_JAR_NAME}"
  DISCOVERY_SCRIPT="${CAP_PRUNE_GPU_DISCOVERY_SCRIPT:-$IMAGE_ROOT/gpu-discovery.sh}"
  LOG_CONFIG="${CAP_PRUNE_LOG_CONFIG:-$IMAGE_ROOT/conf/log4j2.properties}"
  DJL_CACHE="${CAP_PRUNE_DJL_CACHE_DIR:-/tmp/djl-cache}"
}

cap_mode_option() {
  case "$1" in
    --master) MASTER="$2"; return 1 ;;
    --image) IMAGE="$2"; return 1 ;;
    --namespace) NAMESPACE="$2"; return 1 ;;
    --service-account) SERVICE_ACCOUNT="$2"; return 1 ;;
    --pod-template) POD_TEMPLATE="$2"; return 1 ;;
  esac
  return 2
}

cap_mode_check() {
  [[ -n "$MASTER" ]] || cap_die "--master k8s://https://HOST:PORT is required (or CAP_PRUNE_K8S_MASTER)"
  [[ "$MASTER" == k8s://* ]] || cap_die "--master: a Kubernetes master URL starts with k8s://, got '$MASTER'"
  [[ -n "$IMAGE" ]] || cap_die "--image is required (or CAP_PRUNE_IMAGE): see deploy/executor-image.md"
  if [[ -z "$POD_TEMPLATE" ]]; then
    if [[ "$GPUS" == 1 ]]; then
      POD_TEMPLATE="$CAP_HOME/deploy/k8s/executor-pod-template.yaml"
    else
      POD_TEMPLATE="$CAP_HOME/deploy/k8s/executor-pod-template-cpu.yaml"
    fi
  fi
  # spark-submit reads the template here, at submission: it must exist even in a dry run.
  [[ -f "$POD_TEMPLATE" ]] || cap_die "--pod-template: $POD_TEMPLATE does not exist"
  DRIVER_POD_TEMPLATE="${CAP_PRUNE_K8S_DRIVER_POD_TEMPLATE:-$CAP_HOME/deploy/k8s/driver-pod-template-gpu.yaml}"
  if [[ "$DRIVER_GPU" == 1 && ! -f "$DRIVER_POD_TEMPLATE" ]]; then
    cap_die "--driver-gpu: driver pod template $DRIVER_POD_TEMPLATE does not exist (CAP_PRUNE_K8S_DRIVER_POD_TEMPLATE)"
  fi
}

cap_mode_master_args() {
  SUBMIT_ARGS+=(--master "$MASTER" --deploy-mode cluster
    --conf "spark.kubernetes.container.image=$IMAGE"
    --conf "spark.kubernetes.namespace=$NAMESPACE"
    --conf "spark.kubernetes.authenticate.driver.serviceAccountName=$SERVICE_ACCOUNT"
    --conf "spark.kubernetes.executor.podTemplateFile=$POD_TEMPLATE")
}

cap_mode_driver_env() {
  SUBMIT_ARGS+=(--conf "spark.kubernetes.driverEnv.$1=$2")
}

# The log configuration and the discovery script live in the image, not on this machine.
cap_mode_log_config_ref() { LOG_REF="$LOG_CONFIG"; }

cap_mode_gpu_args() {
  # Spark on Kubernetes turns the GPU amount into a pod resource limit of this vendor.
  SUBMIT_ARGS+=(--conf "spark.executor.resource.gpu.vendor=nvidia.com")
}

cap_mode_driver_gpu_args() {
  # The driver pod: a GPU limit of this vendor, and a template that lets it onto GPU nodes.
  SUBMIT_ARGS+=(--conf "spark.driver.resource.gpu.vendor=nvidia.com"
    --conf "spark.kubernetes.driver.podTemplateFile=$DRIVER_POD_TEMPLATE")
}

cap_main "$@"
