#!/usr/bin/env python3
"""Static check of an Airflow DAG that runs cap-prune with SparkSubmitOperator, without Airflow.

Airflow cannot be installed where cap-prune is built, so this checks what can be checked from the
DAG's source with the Python standard library only:

  1. the file compiles (py_compile);
  2. every SparkSubmitOperator / PythonOperator call uses only keyword arguments that the operator
     accepts (apache-airflow-providers-apache-spark's SparkSubmitOperator and Airflow's BaseOperator),
     and default_args uses only BaseOperator arguments;
  3. templates ({{ ... }}) appear only in the operator's templated fields (Airflow passes the
     others literally);
  4. the java_class exists as a .class in the built application jar;
  5. for cap-prune's main class: one task per executor (spark.task.cpus = executor_cores) and DJL
     offline on the driver and on executors; with GPUs (spark.task.resource.gpu.amount), one GPU per
     executor and per task, a discovery script, no dynamic allocation, and the CUDA libtorch named by
     PYTORCH_LIBRARY_PATH for executors and driver instead of the CPU natives jar;
  6. the task wiring: every task is wired with >> / <<, there is no cycle, and every Spark task has a
     downstream task;
  7. it prints the spark-submit command each Spark task runs, with templates rendered for a sample
     date, in the order SparkSubmitHook builds it.

It does not import the DAG (that needs Airflow) and cannot see what a connection holds: the master
and deploy mode come from --conn-master / --conn-deploy-mode. --param KEY=VALUE replaces a DAG
param for the rendering (as a manual trigger's "params" would), and --json prints the result as one
JSON document on stdout instead of text: {"ok", "dag", "date", "master", "deploy_mode", "params",
"tasks": [{"task_id", "command": [argv...]}]}; the integration tests run that argv on their cluster.
Exit status 0: all checks passed; 1: a check failed; 2: bad usage.

  python3 deploy/airflow/check_dag.py [DAG_FILE] [--jar spark-job/target/cap-prune.jar]
      [--date 2025-01-13] [--conn-master yarn] [--conn-deploy-mode cluster]
      [--param output_root=hdfs:///tmp/runs ...] [--json]
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import py_compile
import re
import shlex
import sys
import tempfile
import types
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CAP_MAIN_CLASS = "io.capprune.spark.cli.CapPruneMain"

# SparkSubmitOperator.__init__ keyword arguments (apache-airflow-providers-apache-spark,
# airflow/providers/apache/spark/operators/spark_submit.py, 5.x).
SPARK_SUBMIT_KWARGS = {
    "application", "conf", "conn_id", "files", "py_files", "archives", "driver_class_path", "jars",
    "java_class", "packages", "exclude_packages", "repositories", "total_executor_cores",
    "executor_cores", "executor_memory", "driver_memory", "keytab", "principal", "proxy_user", "name",
    "num_executors", "status_poll_interval", "application_args", "env_vars", "verbose", "spark_binary",
    "properties_file", "yarn_queue", "deploy_mode", "use_krb5ccache", "post_submit_commands",
    "track_driver_via_k8s_api", "yarn_track_via_rm_api", "yarn_rm_auth",
    "openlineage_inject_parent_job_info", "openlineage_inject_transport_info",
    "reconnect_on_retry", "durable",
}
# Its template_fields: only these are rendered by Jinja.
SPARK_SUBMIT_TEMPLATED = {
    "application", "conf", "files", "py_files", "jars", "driver_class_path", "packages",
    "exclude_packages", "keytab", "principal", "proxy_user", "name", "application_args", "env_vars",
    "post_submit_commands", "properties_file",
}
PYTHON_OPERATOR_KWARGS = {
    "python_callable", "op_args", "op_kwargs", "templates_dict", "templates_exts",
    "show_return_value_in_logs",
}
PYTHON_OPERATOR_TEMPLATED = {"templates_dict", "op_args", "op_kwargs"}
# BaseOperator.__init__ keyword arguments (Airflow 2.x and 3.x; sla and task_concurrency are 2.x only).
BASE_OPERATOR_KWARGS = {
    "task_id", "owner", "email", "email_on_retry", "email_on_failure", "retries", "retry_delay",
    "retry_exponential_backoff", "max_retry_delay", "start_date", "end_date", "depends_on_past",
    "ignore_first_depends_on_past", "wait_for_past_depends_before_skipping", "wait_for_downstream",
    "dag", "params", "default_args", "priority_weight", "weight_rule", "queue", "pool", "pool_slots",
    "sla", "execution_timeout", "on_execute_callback", "on_failure_callback", "on_success_callback",
    "on_retry_callback", "on_skipped_callback", "pre_execute", "post_execute", "trigger_rule",
    "resources", "run_as_user", "task_concurrency", "map_index_template", "max_active_tis_per_dag",
    "max_active_tis_per_dagrun", "executor", "executor_config", "do_xcom_push", "multiple_outputs",
    "inlets", "outlets", "task_group", "doc", "doc_md", "doc_json", "doc_yaml", "doc_rst",
    "logger_name", "allow_nested_operators", "retry_delay_multiplier",
}
OPERATORS = {
    "SparkSubmitOperator": (SPARK_SUBMIT_KWARGS, SPARK_SUBMIT_TEMPLATED),
    "PythonOperator": (PYTHON_OPERATOR_KWARGS, PYTHON_OPERATOR_TEMPLATED),
}


class CheckFailed(Exception):
    pass


class UsageError(Exception):
    """Bad command-line input (exit status 2)."""


class Unevaluable(Exception):
    pass


def call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        f = node.func
        if isinstance(f, ast.Name):
            return f.id
        if isinstance(f, ast.Attribute):
            return f.attr
    return None


class Evaluator:
    """Evaluates the literal part of a DAG: constants, lists, dicts, + and module-level names."""

    def __init__(self, tree: ast.Module):
        self.names: dict[str, ast.AST] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.names.setdefault(node.targets[0].id, node.value)

    def eval(self, node: ast.AST, depth: int = 0):
        if depth > 50:
            raise Unevaluable("too deep")
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.eval(e, depth + 1) for e in node.elts]
        if isinstance(node, ast.Dict):
            out = {}
            for k, v in zip(node.keys, node.values):
                if k is None:  # {**other, ...}
                    merged = self.eval(v, depth + 1)
                    if not isinstance(merged, dict):
                        raise Unevaluable(ast.unparse(v))
                    out.update(merged)
                else:
                    out[self.eval(k, depth + 1)] = self.eval(v, depth + 1)
            return out
        if isinstance(node, ast.IfExp):  # a if FLAG else b, with FLAG a module-level constant
            return self.eval(node.body if self.eval(node.test, depth + 1) else node.orelse, depth + 1)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.eval(node.left, depth + 1) + self.eval(node.right, depth + 1)
        if isinstance(node, ast.Name) and node.id in self.names:
            return self.eval(self.names[node.id], depth + 1)
        if isinstance(node, ast.Call) and call_name(node) == "str" and len(node.args) == 1:
            return str(self.eval(node.args[0], depth + 1))
        raise Unevaluable(ast.unparse(node))


# ------------------------------------------------------------------------------ template rendering

TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)


def has_template(value) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, (list, tuple)):
        return any(has_template(v) for v in value)
    if isinstance(value, dict):
        return any(has_template(k) or has_template(v) for k, v in value.items())
    return False


def template_context(date: dt.date, params: dict) -> dict:
    ds = date.isoformat()
    logical = dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc)
    ti = types.SimpleNamespace(try_number=1, task_id="?", map_index=-1)
    return {
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "ts": logical.isoformat(),
        "ts_nodash": logical.strftime("%Y%m%dT%H%M%S"),
        "logical_date": logical,
        "execution_date": logical,
        "run_id": f"scheduled__{logical.isoformat()}",
        "params": types.SimpleNamespace(**params),
        "task_instance": ti,
        "ti": ti,
    }


def render(value, ctx: dict, where: str):
    """Renders {{ expr }} with Python semantics for the simple expressions a DAG uses."""
    if isinstance(value, str):
        if "{%" in value or "|" in "".join(TEMPLATE.findall(value)):
            raise CheckFailed(f"{where}: Jinja blocks and filters are beyond this static check: {value!r}")

        def one(m: re.Match) -> str:
            expr = m.group(1).strip()
            try:
                return str(eval(expr, {"__builtins__": {}}, dict(ctx)))  # noqa: S307 - the DAG's own text
            except Exception as e:  # noqa: BLE001 - any failure is a template the DAG cannot render
                raise CheckFailed(f"{where}: cannot render {{{{ {expr} }}}}: {e}") from None

        return TEMPLATE.sub(one, value)
    if isinstance(value, list):
        return [render(v, ctx, where) for v in value]
    if isinstance(value, dict):
        return {render(k, ctx, where): render(v, ctx, where) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------ spark-submit command

def spark_submit_command(kw: dict, master: str, conn_deploy_mode: str | None) -> list[str]:
    """The argv SparkSubmitHook._build_spark_submit_command builds, in its order."""
    deploy_mode = kw.get("deploy_mode") or conn_deploy_mode
    is_yarn = "yarn" in master
    is_k8s = "k8s" in master
    cmd = [kw.get("spark_binary") or "spark-submit", "--master", master]
    conf = dict(kw.get("conf") or {})
    for k, v in conf.items():
        cmd += ["--conf", f"{k}={v}"]
    env = kw.get("env_vars") or {}
    env_prefix = []
    if env and (is_yarn or is_k8s):
        tmpl = "spark.yarn.appMasterEnv.{}={}" if is_yarn else "spark.kubernetes.driverEnv.{}={}"
        for k, v in env.items():
            cmd += ["--conf", tmpl.format(k, v)]
    elif env and deploy_mode != "cluster":
        env_prefix = [f"{k}={v}" for k, v in env.items()]
    elif env:
        raise CheckFailed("env_vars is not supported by SparkSubmitHook in standalone cluster mode")
    if is_k8s and "spark.kubernetes.namespace" in conf:
        cmd += ["--conf", f"spark.kubernetes.namespace={conf['spark.kubernetes.namespace']}"]
    for key, flag in [("properties_file", "--properties-file"), ("files", "--files"), ("py_files", "--py-files"),
                      ("archives", "--archives"), ("driver_class_path", "--driver-class-path"), ("jars", "--jars"),
                      ("packages", "--packages"), ("exclude_packages", "--exclude-packages"),
                      ("repositories", "--repositories"), ("num_executors", "--num-executors"),
                      ("total_executor_cores", "--total-executor-cores"), ("executor_cores", "--executor-cores"),
                      ("executor_memory", "--executor-memory"), ("driver_memory", "--driver-memory"),
                      ("keytab", "--keytab"), ("principal", "--principal")]:
        if kw.get(key):
            cmd += [flag, str(kw[key])]
    if kw.get("proxy_user"):
        cmd += ["--proxy-user", kw["proxy_user"]]
    cmd += ["--name", kw.get("name", "arrow-spark")]
    if kw.get("java_class"):
        cmd += ["--class", kw["java_class"]]
    if kw.get("verbose"):
        cmd += ["--verbose"]
    if kw.get("yarn_queue"):
        cmd += ["--queue", kw["yarn_queue"]]
    if deploy_mode:
        cmd += ["--deploy-mode", deploy_mode]
    cmd += [kw.get("application", "")]
    cmd += [str(a) for a in kw.get("application_args") or []]
    return (["env"] + env_prefix if env_prefix else []) + cmd


# ------------------------------------------------------------------------------ the checks

class Checker:
    def __init__(self, dag_file: Path, jar: Path, date: dt.date, master: str, deploy_mode: str | None,
                 param_overrides: dict[str, str] | None = None, as_json: bool = False):
        self.param_overrides = dict(param_overrides or {})
        self.as_json = as_json
        self.params: dict = {}
        self.dag_file = dag_file
        self.jar = jar
        self.date = date
        self.master = master
        self.deploy_mode = deploy_mode
        self.errors: list[str] = []
        self.commands: list[tuple[str, list[str]]] = []
        self.spark_vars: set[str] = set()

    def fail(self, node: ast.AST | None, message: str) -> None:
        line = f":{node.lineno}" if node is not None and hasattr(node, "lineno") else ""
        self.errors.append(f"{self.dag_file}{line}: {message}")

    def run(self) -> int:
        try:
            # Byte code goes to a scratch directory: the check leaves nothing beside the DAG.
            with tempfile.TemporaryDirectory() as scratch:
                py_compile.compile(str(self.dag_file), cfile=str(Path(scratch) / "dag.pyc"), doraise=True)
        except py_compile.PyCompileError as e:
            print(f"check_dag: FAIL {self.dag_file}: does not compile: {e.msg}", file=sys.stderr)
            return 1
        tree = ast.parse(self.dag_file.read_text(encoding="utf-8"), filename=str(self.dag_file))
        ev = Evaluator(tree)
        params = self.dag_params(tree, ev)
        unknown = sorted(set(self.param_overrides) - set(params))
        if unknown:
            raise UsageError(f"--param {', '.join(unknown)}: not a param of the DAG (it has {', '.join(sorted(params))})")
        params = {**params, **self.param_overrides}
        self.params = params
        tasks = self.check_operators(tree, ev, params)
        self.check_default_args(tree, ev)
        self.check_wiring(tree, tasks)
        if not tasks:
            self.fail(None, "no SparkSubmitOperator or PythonOperator task found")
        for e in self.errors:
            print(f"check_dag: FAIL {e}", file=sys.stderr)
        if self.errors:
            return 1
        if self.as_json:
            json.dump({
                "ok": True,
                "dag": str(self.dag_file),
                "date": self.date.isoformat(),
                "master": self.master,
                "deploy_mode": self.deploy_mode,
                "params": {k: str(v) for k, v in self.params.items()},
                "tasks": [{"task_id": t, "command": cmd} for t, cmd in self.commands],
            }, sys.stdout, indent=2)
            print()
            return 0
        for task_id, cmd in self.commands:
            print(f"# {task_id} ({self.date.isoformat()}, master {self.master}):")
            print(shlex.join(cmd))
        print(f"check_dag: OK {self.dag_file}: {len(tasks)} tasks; static check only, Airflow not imported")
        return 0

    def dag_params(self, tree: ast.Module, ev: Evaluator) -> dict:
        for node in ast.walk(tree):
            if call_name(node) == "DAG":
                for k in node.keywords:
                    if k.arg == "params":
                        try:
                            return ev.eval(k.value)
                        except Unevaluable as e:
                            self.fail(node, f"DAG params cannot be evaluated statically: {e}")
        return {}

    def check_default_args(self, tree: ast.Module, ev: Evaluator) -> None:
        if "default_args" not in ev.names:
            return
        node = ev.names["default_args"]
        try:
            value = ev.eval(node)
        except Unevaluable:
            if isinstance(node, ast.Dict):
                value = {ev.eval(k): None for k in node.keys if k is not None}
            else:
                self.fail(node, "default_args cannot be read statically")
                return
        for key in value:
            if key not in BASE_OPERATOR_KWARGS:
                self.fail(node, f"default_args: '{key}' is not a BaseOperator argument")

    def check_operators(self, tree: ast.Module, ev: Evaluator, params: dict) -> dict[str, str]:
        """Checks every operator call; returns {python variable: task_id}."""
        var_of_call: dict[int, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                var_of_call[id(node.value)] = node.targets[0].id
        tasks: dict[str, str] = {}
        for node in ast.walk(tree):
            op = call_name(node)
            if op not in OPERATORS:
                continue
            accepted, templated = OPERATORS[op]
            if node.args:
                self.fail(node, f"{op}: positional arguments; operators take keyword arguments only")
            kwargs: dict[str, ast.AST] = {}
            for k in node.keywords:
                if k.arg is None:
                    self.fail(node, f"{op}: **{ast.unparse(k.value)} cannot be checked statically; name the arguments")
                    continue
                if k.arg not in accepted and k.arg not in BASE_OPERATOR_KWARGS:
                    self.fail(k.value, f"{op}: unknown keyword argument '{k.arg}'")
                kwargs[k.arg] = k.value
            task_id = None
            if "task_id" not in kwargs:
                self.fail(node, f"{op}: no task_id")
            else:
                try:
                    task_id = ev.eval(kwargs["task_id"])
                except Unevaluable:
                    self.fail(node, f"{op}: task_id must be a constant")
            values = {}
            for name, value_node in kwargs.items():
                try:
                    values[name] = ev.eval(value_node)
                except Unevaluable:
                    continue
                if has_template(values[name]) and name not in templated:
                    self.fail(value_node, f"{op} {task_id}: '{name}' holds a template but is not a templated "
                                          f"field; Airflow would pass it literally")
            if var_of_call.get(id(node)):
                tasks[var_of_call[id(node)]] = task_id or "?"
                if op == "SparkSubmitOperator":
                    self.spark_vars.add(var_of_call[id(node)])
            if op == "SparkSubmitOperator":
                self.check_spark_task(node, task_id, kwargs, values, params)
        return tasks

    def check_spark_task(self, node, task_id, kwargs, values, params) -> None:
        for needed in ("application", "java_class", "application_args"):
            if needed not in kwargs:
                self.fail(node, f"SparkSubmitOperator {task_id}: no {needed}")
            elif needed not in values:
                self.fail(kwargs[needed], f"SparkSubmitOperator {task_id}: {needed} cannot be evaluated statically")
        java_class = values.get("java_class")
        if isinstance(java_class, str):
            self.check_class_in_jar(kwargs["java_class"], java_class)
        if java_class == CAP_MAIN_CLASS:
            self.check_cap_constraints(node, task_id, values)
        if self.errors:
            return
        ctx = template_context(self.date, params)
        try:
            rendered = {name: render(value, ctx, f"{task_id}.{name}") if name in SPARK_SUBMIT_TEMPLATED else value
                        for name, value in values.items()}
            self.commands.append((task_id, spark_submit_command(rendered, self.master, self.deploy_mode)))
        except CheckFailed as e:
            self.fail(node, f"SparkSubmitOperator {task_id}: {e}")

    def check_class_in_jar(self, node, java_class: str) -> None:
        entry = java_class.replace(".", "/") + ".class"
        if not self.jar.is_file():
            self.fail(node, f"java_class {java_class}: application jar {self.jar} not found "
                            f"(build it with mvn -DskipTests package, or pass --jar)")
            return
        try:
            with zipfile.ZipFile(self.jar) as z:
                present = entry in z.namelist()
        except zipfile.BadZipFile as e:
            self.fail(node, f"java_class {java_class}: {self.jar} is not a jar: {e}")
            return
        if not present:
            self.fail(node, f"java_class {java_class}: {entry} is not in {self.jar}")

    def check_cap_constraints(self, node, task_id, values) -> None:
        conf = values.get("conf")
        if not isinstance(conf, dict):
            self.fail(node, f"{task_id}: cap-prune needs conf with spark.task.cpus and the DJL offline settings")
            return
        cores = values.get("executor_cores")
        if cores is None or str(conf.get("spark.task.cpus")) != str(cores):
            self.fail(node, f"{task_id}: one task per executor: conf spark.task.cpus "
                            f"({conf.get('spark.task.cpus')}) must equal executor_cores ({cores})")
        for key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"):
            if "-Dai.djl.offline=true" not in str(conf.get(key, "")):
                self.fail(node, f"{task_id}: conf {key} must hold -Dai.djl.offline=true")
        if str(conf.get("spark.executorEnv.DJL_OFFLINE", "")).lower() != "true":
            self.fail(node, f"{task_id}: conf spark.executorEnv.DJL_OFFLINE must be true")
        if str(conf.get("spark.task.resource.gpu.amount", "0")) not in ("0", "0.0", ""):
            self.check_gpu_constraints(node, task_id, values, conf)

    def check_gpu_constraints(self, node, task_id, values, conf) -> None:
        """What deploy/common.sh --gpus sets, and what the job refuses to start without."""
        for key in ("spark.executor.resource.gpu.amount", "spark.task.resource.gpu.amount"):
            if str(conf.get(key)) != "1":
                self.fail(node, f"{task_id}: GPUs: conf {key} must be 1 (one GPU per executor and per task), "
                                f"got {conf.get(key)}")
        if not conf.get("spark.executor.resource.gpu.discoveryScript"):
            self.fail(node, f"{task_id}: GPUs: conf spark.executor.resource.gpu.discoveryScript is not set")
        if str(conf.get("spark.dynamicAllocation.enabled", "")).lower() != "false":
            self.fail(node, f"{task_id}: GPUs: conf spark.dynamicAllocation.enabled must be false "
                            f"(the job keeps one shard per GPU executor)")
        env = values.get("env_vars") or {}
        if not conf.get("spark.executorEnv.PYTORCH_LIBRARY_PATH") or not env.get("PYTORCH_LIBRARY_PATH"):
            self.fail(node, f"{task_id}: GPUs need the CUDA libtorch: set PYTORCH_LIBRARY_PATH in conf "
                            f"(spark.executorEnv.PYTORCH_LIBRARY_PATH) and in env_vars (the driver)")
        if "pytorch-native-cpu" in str(values.get("jars") or "") or "natives_jar" in str(values.get("jars") or ""):
            self.fail(node, f"{task_id}: GPUs: jars ships the CPU natives jar; drop it, the CUDA libtorch "
                            f"comes from PYTORCH_LIBRARY_PATH")

    def check_wiring(self, tree: ast.Module, tasks: dict[str, str]) -> None:
        edges: set[tuple[str, str]] = set()

        def operands(n: ast.AST) -> list[str]:
            if isinstance(n, ast.Name):
                return [n.id]
            if isinstance(n, (ast.List, ast.Tuple)):
                return [e.id for e in n.elts if isinstance(e, ast.Name)]
            if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.RShift, ast.LShift)):
                return operands(n.right) if isinstance(n.op, ast.RShift) else operands(n.left)
            return []

        def walk_chain(n: ast.AST) -> list[str]:
            """Adds the edges of a >>/<< chain; returns the names at its right end."""
            if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.RShift, ast.LShift)):
                left = walk_chain(n.left)
                right = operands(n.right) if not isinstance(n.right, ast.BinOp) else walk_chain(n.right)
                for a in left:
                    for b in right:
                        edges.add((a, b) if isinstance(n.op, ast.RShift) else (b, a))
                return right
            return operands(n)

        for node in ast.walk(tree):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.BinOp):
                walk_chain(node.value)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("set_downstream", "set_upstream") and isinstance(node.func.value, ast.Name):
                for b in operands(node.args[0]) if node.args else []:
                    a = node.func.value.id
                    edges.add((a, b) if node.func.attr == "set_downstream" else (b, a))
        for a, b in edges:
            for v in (a, b):
                if v not in tasks:
                    self.fail(None, f"wiring: '{v}' is not a task of this DAG")
        wired = {v for e in edges for v in e}
        if len(tasks) > 1:
            for var, task_id in tasks.items():
                if var not in wired:
                    self.fail(None, f"wiring: task {task_id} ({var}) is not wired with >> to any other task")
        # The pipeline's output is for someone: a Spark task with nothing downstream publishes nothing.
        for var in sorted(self.spark_vars):
            if len(tasks) > 1 and var in wired and not any(a == var for a, _ in edges):
                self.fail(None, f"wiring: Spark task {tasks[var]} has no downstream task (publish the model location)")
        # A cycle would make the DAG unloadable.
        graph: dict[str, set[str]] = {v: set() for v in tasks}
        for a, b in edges:
            graph.setdefault(a, set()).add(b)
        state: dict[str, int] = {}

        def visit(v: str) -> bool:
            state[v] = 1
            for w in graph.get(v, ()):
                if state.get(w) == 1 or (state.get(w) is None and visit(w)):
                    return True
            state[v] = 2
            return False

        if any(state.get(v) is None and visit(v) for v in list(graph)):
            self.fail(None, "wiring: the task dependencies form a cycle")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dag", nargs="?", default=str(HERE / "cap_prune_dag.py"))
    ap.add_argument("--jar", default=str(REPO / "spark-job" / "target" / "cap-prune.jar"))
    ap.add_argument("--date", default="2025-01-13", help="logical date to render templates for")
    ap.add_argument("--conn-master", default="yarn", help="master of the Spark connection (default yarn)")
    ap.add_argument("--conn-deploy-mode", default="cluster", help="deploy-mode of the connection's extra")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="replace the DAG param KEY for the rendering (repeatable)")
    ap.add_argument("--json", action="store_true", help="print the checked commands as JSON on stdout")
    a = ap.parse_args(argv)
    overrides = {}
    for p in a.param:
        key, sep, value = p.partition("=")
        if not sep or not key:
            print(f"check_dag: --param expects KEY=VALUE, got {p!r}", file=sys.stderr)
            return 2
        overrides[key] = value
    dag = Path(a.dag)
    if not dag.is_file():
        print(f"check_dag: no DAG file {dag}", file=sys.stderr)
        return 2
    try:
        date = dt.date.fromisoformat(a.date)
    except ValueError:
        print(f"check_dag: --date: expected YYYY-MM-DD, got {a.date!r}", file=sys.stderr)
        return 2
    try:
        return Checker(dag, Path(a.jar), date, a.conn_master, a.conn_deploy_mode or None, overrides, a.json).run()
    except UsageError as e:
        print(f"check_dag: {e}", file=sys.stderr)
        return 2
    except CheckFailed as e:
        print(f"check_dag: FAIL {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
