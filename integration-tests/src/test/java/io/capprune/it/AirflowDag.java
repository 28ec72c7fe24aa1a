package io.capprune.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The spark-submit command of the Airflow DAG (deploy/airflow/cap_prune_dag.py), rendered by
 * deploy/airflow/check_dag.py --json for a run date, a Spark connection and params, as the
 * SparkSubmitOperator would run it on an Airflow worker. The ITs run it on their standalone cluster
 * after two changes, each asserted, nothing else: the DAG's sizing (executors of 8 cores and 16 GB)
 * is scaled to the two 1-core workers, and the short-run settings of {@link CapJob} are appended as
 * further {@code --conf} job arguments. What the cluster's site configuration would hold (driver
 * address, event log, HDFS client settings, its log4j2.properties) goes into a SPARK_CONF_DIR.
 */
final class AirflowDag {

  static final String TASK_ID = "prune_pipeline";

  /**
   * The DAG's sizing and what the ITs' cluster can hold; every one must be in the rendered command.
   */
  private static final Map<String, String> SCALED_OPTIONS =
      Map.of(
          "--num-executors", "2",
          "--executor-cores", "1",
          "--executor-memory", "1g",
          "--driver-memory", SparkSubmitter.DRIVER_MEMORY);

  private static final Map<String, String> SCALED_CONF =
      Map.of(
          "spark.task.cpus", "1",
          "spark.executor.memoryOverhead", "384m");

  private AirflowDag() {}

  /**
   * check_dag.py's JSON document for the DAG with {@code params}; fails with its output if a check
   * fails.
   */
  static JsonNode render(
      ItSettings settings, String date, String master, Map<String, String> params)
      throws InterruptedException {
    Path repo = ItSettings.repoDir();
    List<String> command =
        new ArrayList<>(
            List.of(
                "python3",
                repo.resolve("deploy/airflow/check_dag.py").toString(),
                "--json",
                "--jar",
                settings.appJar().toString(),
                "--date",
                date,
                "--conn-master",
                master,
                "--conn-deploy-mode",
                "client"));
    params.forEach(
        (k, v) -> {
          command.add("--param");
          command.add(k + "=" + v);
        });
    Path log = settings.logDir().resolve("check_dag-" + date + ".log");
    try (ChildProcess p =
        ChildProcess.start("check_dag", command, Map.of(), settings.buildDir(), log)) {
      Integer exit = p.waitFor(Duration.ofSeconds(60));
      String output = p.output();
      if (exit == null || exit != 0) {
        throw new IllegalStateException(
            "check_dag.py exited " + exit + ": " + command + "\n" + output);
      }
      // stdout and stderr share the log; the JSON document is the one block starting with '{'
      return new ObjectMapper().readTree(output.substring(output.indexOf("{\n")));
    } catch (IOException e) {
      throw new UncheckedIOException("check_dag.py printed no JSON: " + command, e);
    }
  }

  /** The rendered argv of the Spark task. */
  static List<String> sparkCommand(JsonNode rendered) {
    for (JsonNode task : rendered.path("tasks")) {
      if (TASK_ID.equals(task.path("task_id").asText())) {
        List<String> argv = new ArrayList<>();
        task.path("command").forEach(a -> argv.add(a.asText()));
        return List.copyOf(argv);
      }
    }
    throw new IllegalStateException("no task " + TASK_ID + " in " + rendered);
  }

  /**
   * {@code argv} with the sizing scaled to the ITs' cluster and {@code jobConf} appended as {@code
   * --conf} job arguments (keys the DAG already sets are left to the DAG). Throws if the DAG no
   * longer has one of the sizing options, so a change of the DAG is seen here.
   */
  static List<String> forItCluster(List<String> argv, List<String> jobConf) {
    List<String> out = new ArrayList<>(argv);
    Map<String, Integer> seen = new LinkedHashMap<>();
    for (int i = 0; i + 1 < out.size(); i++) {
      String option = out.get(i);
      if (SCALED_OPTIONS.containsKey(option)) {
        out.set(i + 1, SCALED_OPTIONS.get(option));
        seen.merge(option, 1, Integer::sum);
      } else if (option.equals("--conf")) {
        String kv = out.get(i + 1);
        String key = kv.substring(0, Math.max(0, kv.indexOf('=')));
        if (SCALED_CONF.containsKey(key)) {
          out.set(i + 1, key + "=" + SCALED_CONF.get(key));
          seen.merge(key, 1, Integer::sum);
        }
      }
    }
    for (String expected : concat(SCALED_OPTIONS.keySet(), SCALED_CONF.keySet())) {
      if (seen.getOrDefault(expected, 0) != 1) {
        throw new IllegalStateException(
            "the DAG's command sets "
                + expected
                + " "
                + seen.getOrDefault(expected, 0)
                + " times, expected once: "
                + argv);
      }
    }
    List<String> dagJobKeys = new ArrayList<>();
    for (int i = 0; i + 1 < argv.size(); i++) {
      if (argv.get(i).equals("--conf") && !argv.get(i + 1).startsWith("spark.")) {
        dagJobKeys.add(argv.get(i + 1).substring(0, argv.get(i + 1).indexOf('=')));
      }
    }
    for (String c : jobConf) {
      if (!dagJobKeys.contains(c.substring(0, c.indexOf('=')))) {
        out.add("--conf");
        out.add(c);
      }
    }
    return List.copyOf(out);
  }

  /**
   * A SPARK_CONF_DIR as a cluster's edge node has: spark-defaults.conf with {@code defaults}, and a
   * log4j2.properties that keeps the root at WARN and does not name io.capprune (the job must keep
   * its progress lines at INFO by itself, see ProgressLogging).
   */
  static Path siteConfDir(Path dir, Map<String, String> defaults) {
    try {
      Files.createDirectories(dir);
      StringBuilder conf =
          new StringBuilder("# the ITs' site configuration for the Airflow DAG's command\n");
      defaults.forEach((k, v) -> conf.append(k).append(' ').append(v).append('\n'));
      Files.writeString(dir.resolve("spark-defaults.conf"), conf);
      Files.writeString(
          dir.resolve("log4j2.properties"),
          """
                    # A site log configuration that keeps the root at WARN and does not name io.capprune.
                    rootLogger.level = warn
                    rootLogger.appenderRef.stdout.ref = console
                    appender.console.type = Console
                    appender.console.name = console
                    appender.console.target = SYSTEM_ERR
                    appender.console.layout.type = PatternLayout
                    appender.console.layout.pattern = %d{HH:mm:ss} %-5p %c{1}: %m%n
                    """);
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the site configuration in " + dir, e);
    }
  }

  private static List<String> concat(java.util.Set<String> a, java.util.Set<String> b) {
    List<String> out = new ArrayList<>(a);
    out.addAll(b);
    return out;
  }
}
