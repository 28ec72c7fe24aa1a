"""Weekly CAP pruning run of cap-prune on a Spark cluster, then publication of the model location.

Tasks:
  prune_pipeline  spark-submit of cap-prune.jar, command "run": finetune, prune, evaluate, export.
                  Each scheduled run writes to its own directory, <output_root>/<task>/<ds_nodash>.
                  "--resume" is always passed: on a fresh directory it starts from scratch, and on a
                  retry it continues from the newest committed snapshot while "run" skips the stages
                  whose output is complete (teacher, _PRUNED marker).
  publish_model   pushes the model location (and the run's metrics/sparsity files) to XCom, key
                  "model_location", for downstream DAGs.

Airflow cannot be installed where this project is built; deploy/airflow/check_dag.py checks this
file statically (operator arguments against the provider's signature, the main class in the built
jar, the task wiring) and prints the spark-submit command the Spark task runs. See
docs/operations-deploy.md.

Spark connection "spark_cap_prune": master yarn (or spark://..., k8s://...), extra
{"deploy-mode": "cluster"}. The Airflow worker needs spark-submit on PATH (Spark 4.2.0, Scala 2.13).

GPUs: set GPUS = True below. Each executor then asks for one GPU and each task for one (the job
runs one task per executor), executors run the discovery script GPU_DISCOVERY_SCRIPT, and libtorch
2.7.1 for CUDA 12.8 at LIBTORCH_DIR on every GPU node (or in the image) replaces the CPU natives jar,
which is then not shipped (PYTORCH_LIBRARY_PATH, PYTORCH_VERSION, PYTORCH_FLAVOR on executors and
driver). check_dag.py checks these settings together, as the deploy/ wrappers do for --gpus.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

try:  # Airflow 3 ships PythonOperator in the standard provider
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:
    from airflow.operators.python import PythonOperator

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

MAIN_CLASS = "io.capprune.spark.cli.CapPruneMain"
EXECUTOR_CORES = 8
DJL_JAVA_OPTS = "-Dai.djl.offline=true -Dai.djl.default_engine=PyTorch"

# Where one run writes: everything downstream (publish_model, users) derives from this one template.
RUN_OUTPUT = "{{ params.output_root }}/{{ params.task }}/{{ ds_nodash }}"

# GPU executors (see the module docstring). False: CPU executors with the natives jar.
GPUS = False
LIBTORCH_DIR = "/opt/libtorch/lib"
GPU_DISCOVERY_SCRIPT = "/opt/cap-prune/gpu-discovery.sh"

SPARK_CONF = {
    # One task per executor: DJL allows one GradientCollector per JVM.
    "spark.task.cpus": str(EXECUTOR_CORES),
    "spark.executor.memoryOverhead": "8g",
    # DJL never downloads anything, on the driver or on executors.
    "spark.driver.extraJavaOptions": DJL_JAVA_OPTS,
    "spark.executor.extraJavaOptions": DJL_JAVA_OPTS,
    "spark.executorEnv.DJL_OFFLINE": "true",
}
# Reaches the driver: spark.yarn.appMasterEnv.* on YARN, spark.kubernetes.driverEnv.* on k8s.
DRIVER_ENV = {"DJL_OFFLINE": "true"}
# The CUDA libtorch on the nodes, for executors and driver.
LIBTORCH_ENV = {"PYTORCH_LIBRARY_PATH": LIBTORCH_DIR, "PYTORCH_VERSION": "2.7.1", "PYTORCH_FLAVOR": "cu128"}
GPU_CONF = {
    # One GPU per executor and per task.
    "spark.executor.resource.gpu.amount": "1",
    "spark.task.resource.gpu.amount": "1",
    "spark.executor.resource.gpu.discoveryScript": GPU_DISCOVERY_SCRIPT,
    # The job keeps one shard per GPU executor for the whole run: a fixed set of executors.
    "spark.dynamicAllocation.enabled": "false",
    "spark.executorEnv.PYTORCH_LIBRARY_PATH": LIBTORCH_DIR,
    "spark.executorEnv.PYTORCH_VERSION": "2.7.1",
    "spark.executorEnv.PYTORCH_FLAVOR": "cu128",
}

default_args = {
    "owner": "cap-prune",
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
    "retry_exponential_backoff": True,
}

with DAG(
    dag_id="cap_prune_weekly",
    description="CAP pruning of a BERT model for a GLUE task on Spark, weekly",
    schedule="@weekly",
    start_date=datetime(2025, 1, 6, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["cap-prune", "spark"],
    params={
        "app_jar": "hdfs:///apps/cap-prune/cap-prune.jar",
        "natives_jar": "hdfs:///apps/cap-prune/pytorch-native-cpu-2.7.1-linux-x86_64.jar",
        "output_root": "hdfs:///cap-prune/runs",
        "task": "sst2",
        "model": "hdfs:///cap-prune/models/bert-base-uncased",
        "data_dir": "hdfs:///cap-prune/glue/SST-2",
        "method": "cap-movement",
        "final_threshold": "0.1",
    },
) as dag:
    prune_pipeline = SparkSubmitOperator(
        task_id="prune_pipeline",
        conn_id="spark_cap_prune",
        application="{{ params.app_jar }}",
        java_class=MAIN_CLASS,
        name="cap-prune-{{ params.task }}-{{ ds_nodash }}",
        # libtorch is not inside cap-prune.jar: the CPU natives jar, or (GPUS) the CUDA libtorch on
        # the nodes named by PYTORCH_LIBRARY_PATH in conf and env_vars.
        jars=None if GPUS else "{{ params.natives_jar }}",
        num_executors=4,
        executor_cores=EXECUTOR_CORES,
        executor_memory="16g",
        driver_memory="16g",
        conf={**SPARK_CONF, **GPU_CONF} if GPUS else SPARK_CONF,
        env_vars={**DRIVER_ENV, **LIBTORCH_ENV} if GPUS else DRIVER_ENV,
        application_args=[
            "run",
            "--output", RUN_OUTPUT,
            "--resume",
            # Quoted HOCON strings: a URL is not a valid unquoted HOCON value (the job would fall
            # back to the raw text, but a quoted value is parsed exactly as written).
            "--conf", 'task="{{ params.task }}"',
            "--conf", 'model="{{ params.model }}"',
            "--conf", 'data-dir="{{ params.data_dir }}"',
            "--conf", 'prune.method="{{ params.method }}"',
            "--conf", "prune.final-threshold={{ params.final_threshold }}",
        ],
        execution_timeout=timedelta(hours=72),
    )

    def publish_model(templates_dict, ti, **_):
        """Pushes where the pruned model of this run is; fails if a local run has no model."""
        output = templates_dict["output"]
        location = {
            "output": output,
            "model": output + "/model",
            "metrics": output + "/metrics.json",
            "sparsity": output + "/sparsity.json",
            "summary": output + "/summary.txt",
        }
        # A local output can be checked from here; for hdfs:// and s3a:// the job itself guarantees
        # it: "run" exits 0 only after export wrote the model and summary.txt.
        if "://" not in output or output.startswith("file://"):
            local = output[len("file://"):] if output.startswith("file://") else output
            config = os.path.join(local, "model", "config.json")
            if not os.path.isfile(config):
                raise FileNotFoundError(f"no pruned model at {config}: the prune_pipeline run did not export one")
        ti.xcom_push(key="model_location", value=location["model"])
        return location

    publish = PythonOperator(
        task_id="publish_model",
        python_callable=publish_model,
        templates_dict={"output": RUN_OUTPUT},
        retries=0,
    )

    prune_pipeline >> publish
