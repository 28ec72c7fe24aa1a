package io.capprune.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The GPU path of a real Spark standalone cluster, on a machine without a GPU: one worker offers
 * two GPUs that {@code deploy/gpu-discovery.sh} finds through a fake {@code nvidia-smi} (physical
 * GPUs 0-3) under {@code CUDA_VISIBLE_DEVICES=3,1}, so Spark schedules GPUs 3 and 1; the job is
 * submitted with {@code deploy/spark-submit-standalone.sh --gpus}.
 *
 * <p>What it shows: the wrapper's GPU settings are accepted by Spark and give each of the two
 * executors its own GPU address; {@code cap-prune gpu-check} runs one task per executor and reports
 * what each sees; every executor maps its address through {@code CUDA_VISIBLE_DEVICES} (3 is CUDA
 * ordinal 0, 1 is ordinal 1) and, since the CPU libtorch sees no GPU, fails instead of running on
 * the CPU; {@code cap.worker.use-gpu = false} runs both on the CPU; and a training command with
 * more partitions than GPU executors is refused before Spark starts.
 */
class GpuReadinessIT {
  private static final Duration START_TIMEOUT = Duration.ofMinutes(2);
  private static final Duration SUBMIT_TIMEOUT = Duration.ofMinutes(4);

  private static ItSettings settings;
  private static SparkHome home;
  private static SparkSubmitter submitter;
  private static final List<ChildProcess> daemons = new ArrayList<>();
  private static String masterUrl;

  @BeforeAll
  static void startClusterWithFakeGpus() throws Exception {
    settings = ItSettings.fromSystemProperties();
    home =
        SparkHome.create(
            settings.sparkClasspathFile(), settings.buildDir().resolve("it-spark-home-gpu"));
    submitter = new SparkSubmitter(settings, home);
    Path dir = Files.createDirectories(settings.buildDir().resolve("it-gpu"));
    Path bin = Files.createDirectories(dir.resolve("bin"));
    Path smi = bin.resolve("nvidia-smi");
    Files.writeString(
        smi,
        """
                #!/bin/bash
                [[ "$*" == "--query-gpu=index --format=csv,noheader" ]] || { echo "unexpected args: $*" >&2; exit 9; }
                printf '0\\n1\\n2\\n3\\n'
                """);
    Files.setPosixFilePermissions(smi, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path workerConf = dir.resolve("worker.properties");
    Files.writeString(
        workerConf,
        "spark.worker.resource.gpu.amount 2\n"
            + "spark.worker.resource.gpu.discoveryScript "
            + discoveryScript()
            + "\n");

    int masterPort = Ports.free();
    int masterUi = Ports.free();
    masterUrl = "spark://127.0.0.1:" + masterPort;
    Map<String, String> env = new LinkedHashMap<>(home.environment());
    ChildProcess master =
        daemon(
            "gpu-spark-master",
            env,
            List.of(
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                Integer.toString(masterPort),
                "--webui-port",
                Integer.toString(masterUi)));
    Ports.awaitListening(masterPort, master, START_TIMEOUT);
    // The worker's environment reaches the executors it starts: PATH with the fake nvidia-smi, and
    // CUDA_VISIBLE_DEVICES as YARN without isolation or a container runtime would set it.
    Map<String, String> workerEnv = new LinkedHashMap<>(env);
    workerEnv.put("PATH", bin + ":" + System.getenv().getOrDefault("PATH", "/usr/bin:/bin"));
    workerEnv.put("CUDA_VISIBLE_DEVICES", "3,1");
    daemon(
        "gpu-spark-worker",
        workerEnv,
        List.of(
            "org.apache.spark.deploy.worker.Worker",
            "--host",
            "127.0.0.1",
            "--port",
            Integer.toString(Ports.free()),
            "--webui-port",
            Integer.toString(Ports.free()),
            "--cores",
            "2",
            "--memory",
            "2560m",
            "--work-dir",
            dir.resolve("work").toString(),
            "--properties-file",
            workerConf.toString(),
            masterUrl));
    awaitWorkerWithGpus(masterUi);
  }

  @AfterAll
  static void stop() {
    for (int i = daemons.size() - 1; i >= 0; i--) {
      daemons.get(i).close();
    }
  }

  @Test
  void gpuCheckGivesEachExecutorItsGpuMapsItThroughCudaVisibleDevicesAndRefusesTheCpuFallBack()
      throws Exception {
    SparkSubmitter.Result r = submit("gpu-check", List.of("gpu-check"));
    String out = r.output();
    assertEquals(
        1, r.exitCode(), "the CPU libtorch sees no GPU: gpu-check must fail\n" + r.describe());
    assertTrue(
        out.contains(
            "cap.worker.use-gpu = auto, GPUs scheduled (one per executor and task), "
                + "2 executor(s) registered of 2 requested, 2 task(s)"),
        out);
    List<List<String>> rows = rows(out);
    assertEquals(2, rows.size(), out);
    Set<String> executors = new TreeSet<>();
    Set<String> gpus = new TreeSet<>();
    for (List<String> row : rows) {
      executors.add(row.get(2));
      gpus.add(row.get(3));
      assertEquals("'3,1'", row.get(4), "CUDA_VISIBLE_DEVICES as the executor sees it: " + row);
      assertEquals("-", row.get(5), "no device: the task failed instead of using the CPU: " + row);
      assertEquals("0", row.get(7), "the CPU libtorch's GPU count: " + row);
    }
    assertEquals(2, executors.size(), "one task per executor: " + out);
    assertEquals(
        Set.of("1", "3"),
        gpus,
        "Spark's addresses are those the discovery script reported: " + out);
    assertTrue(
        out.contains("Spark assigned GPU 3 (CUDA ordinal 0) but the PyTorch engine sees 0 GPU(s)"),
        out);
    assertTrue(
        out.contains("Spark assigned GPU 1 (CUDA ordinal 1) but the PyTorch engine sees 0 GPU(s)"),
        out);
    assertTrue(out.contains("gpu-check: FAILED task"), out);
  }

  @Test
  void useGpuFalseRunsOnTheCpuWhereSparkAssignedGpus() throws Exception {
    SparkSubmitter.Result r =
        submit("gpu-check-cpu", List.of("gpu-check", "--conf", "worker.use-gpu=false"));
    String out = r.output();
    assertEquals(0, r.exitCode(), r.describe());
    List<List<String>> rows = rows(out);
    assertEquals(2, rows.size(), out);
    for (List<String> row : rows) {
      assertEquals("cpu()", row.get(5), row.toString());
      assertEquals("cpu()", row.get(6), "the probe tensor: " + row);
    }
    assertTrue(out.contains("gpu-check: OK, 2 executor(s), on the CPU"), out);
  }

  @Test
  void morePartitionsThanGpuExecutorsStopsBeforeSparkStarts() throws Exception {
    SparkSubmitter.Result r =
        submit(
            "partitions",
            List.of(
                "run",
                "--conf",
                "spark.partitions=3",
                "--output",
                settings.buildDir().resolve("it-gpu/never-written").toString()));
    assertEquals(2, r.exitCode(), r.describe());
    assertTrue(
        r.output()
            .contains(
                "configuration error: cap.spark.partitions: 3 partitions but 2 GPU executors"),
        r.output());
    assertTrue(
        !Files.exists(settings.buildDir().resolve("it-gpu/never-written")), "nothing written");
  }

  // ------------------------------------------------------------------------------ helpers

  private static SparkSubmitter.Result submit(String name, List<String> job)
      throws InterruptedException {
    Path repo = ItSettings.repoDir();
    List<String> command =
        new ArrayList<>(
            List.of(
                repo.resolve("deploy/spark-submit-standalone.sh").toString(),
                "--master",
                masterUrl,
                "--deploy-mode",
                "client",
                "--app-jar",
                settings.appJar().toString(),
                // the executors' libtorch is the CPU natives jar: --gpus needs this flag to be
                // given without
                // --libtorch, and the jar goes through spark.jars instead of --natives-jar
                "--gpus",
                "--image-has-libtorch",
                "--spark-conf",
                "spark.jars=" + CapJob.nativeJar(settings),
                "--discovery-script",
                discoveryScript().toString(),
                "--executors",
                "2",
                "--executor-cores",
                "1",
                "--executor-memory",
                "1g",
                "--driver-memory",
                SparkSubmitter.DRIVER_MEMORY,
                "--name",
                "gpu-readiness-" + name,
                "--log-config",
                repo.resolve("conf/log4j2.properties").toString(),
                "--spark-conf",
                "spark.driver.host=127.0.0.1",
                "--spark-conf",
                "spark.driver.bindAddress=127.0.0.1",
                "--spark-conf",
                "spark.ui.enabled=false",
                "--"));
    command.addAll(job);
    try (SparkSubmitter.Running running = submitter.start(name, command, Map.of(), List.of())) {
      return running.await(SUBMIT_TIMEOUT);
    }
  }

  /** The table rows of gpu-check's output, split on blanks. */
  private static List<List<String>> rows(String out) {
    List<List<String>> rows = new ArrayList<>();
    boolean inTable = false;
    for (String line : out.lines().toList()) {
      if (line.startsWith("task ") && line.contains("CUDA_VIS_DEV")) {
        inTable = true;
      } else if (inTable && line.matches("^[0-9]+ +.*")) {
        rows.add(List.of(line.trim().split("\\s+")));
      }
    }
    return rows;
  }

  private static Path discoveryScript() {
    return ItSettings.repoDir().resolve("deploy/gpu-discovery.sh");
  }

  private static ChildProcess daemon(
      String name, Map<String, String> env, List<String> mainAndArgs) {
    List<String> command =
        new ArrayList<>(List.of(SparkStandaloneCluster.javaExecutable(), "-Xmx384m"));
    command.addAll(settings.sparkJvmArgs());
    command.add("-cp");
    command.add(home.classpath());
    command.addAll(mainAndArgs);
    Path logs = settings.logDir();
    ChildProcess p = ChildProcess.start(name, command, env, logs, logs.resolve(name + ".log"));
    daemons.add(p);
    return p;
  }

  /** Waits until the master lists one ALIVE worker that offers 2 GPUs. */
  private static void awaitWorkerWithGpus(int masterUi) throws Exception {
    HttpClient http = HttpClient.newHttpClient();
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    String last = "no answer";
    while (System.nanoTime() < deadline) {
      try {
        HttpResponse<String> resp =
            http.send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + masterUi + "/json/"))
                    .timeout(Duration.ofSeconds(5))
                    .build(),
                HttpResponse.BodyHandlers.ofString());
        last = resp.body();
        JsonNode state = new ObjectMapper().readTree(resp.body());
        for (JsonNode w : state.path("workers")) {
          if ("ALIVE".equals(w.path("state").asText()) && w.toString().contains("gpu")) {
            return;
          }
        }
      } catch (java.io.IOException e) {
        last = e.toString();
      }
      Thread.sleep(500);
    }
    throw new IllegalStateException(
        "no ALIVE worker with GPUs within " + START_TIMEOUT + ": " + last);
  }
}
