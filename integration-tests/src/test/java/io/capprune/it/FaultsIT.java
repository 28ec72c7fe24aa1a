package io.capprune.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.capprune.core.checkpoint.CheckpointStore;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The CAP job under faults on the real cluster: an executor JVM killed while it trains, the driver
 * killed after the first snapshot and the run resumed, a half-written snapshot, S3 unreachable at
 * start, and an output directory that belongs to another run.
 */
class FaultsIT {

  private static final Duration RUN_TIMEOUT = Duration.ofMinutes(8);
  private static final Pattern EXECUTOR_ID = Pattern.compile("--executor-id (\\S+)");

  private static ItStack stack;
  private static URI inputs;
  private static Configuration hdfsConf;

  @BeforeAll
  static void startStack() throws Exception {
    stack = ItStack.start("FaultsIT");
    inputs = stack.hdfs().uri("/it/cap-inputs");
    hdfsConf = new Configuration();
    HdfsCluster.clientProperties().forEach(hdfsConf::set);
    CapJob.upload(CapJob.demoInputs(stack.settings()), inputs, hdfsConf);
  }

  @AfterAll
  static void stopStack() {
    if (stack != null) {
      stack.close();
    }
    List<String> leftovers = ItStack.leftoverProcesses();
    assertTrue(leftovers.isEmpty(), () -> "processes left running after close: " + leftovers);
  }

  /**
   * (a) kill -9 of an executor JVM during pruning: Spark starts another, lost shards are
   * recomputed.
   */
  @Test
  void executorKilledWhilePruningTheJobStillCompletes() throws Exception {
    URI output = stack.hdfs().uri("/it/faults/executor-kill");
    String name = "cap-executor-kill";
    SparkSubmitter.Submission submission =
        submission(name, "run", output, CapJob.jobConf(inputs), Map.of());
    SparkSubmitter.Result result;
    long killedPid;
    String killedId;
    try (SparkSubmitter.Running running = stack.submitter().start(submission)) {
      String firstPruneLine = "prune step 4/" + CapJob.PRUNE_STEPS;
      assertTrue(
          running.awaitOutput(firstPruneLine, RUN_TIMEOUT),
          () -> "no '" + firstPruneLine + "' in the driver log:\n" + running.driver().tail(40));
      List<ProcessHandle> executors =
          stack.executors().stream()
              .filter(
                  p -> p.info().commandLine().orElse("").contains("CoarseGrainedExecutorBackend"))
              .toList();
      assertEquals(2, executors.size(), () -> "executor JVMs under the workers: " + executors);
      ProcessHandle victim = executors.get(0);
      Matcher m = EXECUTOR_ID.matcher(victim.info().commandLine().orElse(""));
      assertTrue(m.find(), () -> "no executor id in " + victim.info().commandLine());
      killedId = m.group(1);
      killedPid = victim.pid();
      System.out.println("[FaultsIT] kill -9 executor " + killedId + " (pid " + killedPid + ")");
      assertTrue(victim.destroyForcibly(), "SIGKILL to executor " + killedPid);
      victim.onExit().get();
      result = running.await(RUN_TIMEOUT);
    }
    stack.measure(name + " (s)", String.format("%.1f", result.elapsed().toMillis() / 1e3));
    assertEquals(0, result.exitCode(), result::describe);
    assertRanAsWrapperPrinted(result);

    EventLog events = EventLog.of(CapPipelineIT.eventLogDirOf(stack), name);
    assertTrue(
        events.executorsRemoved().contains(killedId),
        () -> "executor " + killedId + " not reported lost; removed " + events.executorsRemoved());
    assertTrue(
        events.executorsAdded().size() >= 3,
        () -> "no replacement executor was started: added " + events.executorsAdded());
    Map<String, Integer> pruneTasks = events.successfulTasksByExecutor("prune step");
    // the victim was training (prune steps before the kill), and the steps after it ran elsewhere
    assertTrue(pruneTasks.containsKey(killedId) && pruneTasks.size() >= 2, pruneTasks::toString);
    verifyFinished(StoredFiles.hdfs(stack.hdfs().fileSystem(), new Path(output)), output);
  }

  /**
   * (b) The Airflow DAG's own spark-submit command (deploy/airflow/check_dag.py --json renders it
   * for a run date and params), run on the cluster as Airflow would: its first try's driver is
   * killed after the first committed snapshot, and the retry, the same command (the DAG always
   * passes --resume), finishes with the step count and sparsity the configuration gives. (c) a
   * half-written final snapshot (no _COMMITTED), as a driver killed while writing it leaves, is
   * skipped on resume and written again. The command runs under a site log4j2.properties with the
   * root at WARN: the job's progress lines must still be there.
   */
  @Test
  void airflowDagCommandKilledAfterFirstSnapshotIsRetriedWithResume() throws Exception {
    URI outputRoot = stack.hdfs().uri("/it/faults/airflow");
    String date = "2025-01-13";
    Map<String, String> params = new LinkedHashMap<>();
    params.put("app_jar", stack.settings().appJar().toString());
    params.put("natives_jar", CapJob.nativeJar(stack.settings()).toString());
    params.put("output_root", outputRoot.toString());
    params.put("task", "sst2");
    params.put("model", inputs + "/pretrained");
    params.put("data_dir", inputs + "/data");
    params.put("method", "cap-movement");
    params.put("final_threshold", Double.toString(CapJob.FINAL_KEPT_FRACTION));
    JsonNode rendered =
        AirflowDag.render(stack.settings(), date, stack.cluster().masterUrl(), params);
    List<String> dagCommand = AirflowDag.sparkCommand(rendered);
    URI output = URI.create(outputRoot + "/sst2/20250113");
    // the DAG's templating: per-run output on the run date, --resume on every try
    assertTrue(
        dagCommand.containsAll(List.of("--output", output.toString(), "--resume")),
        dagCommand::toString);
    assertEquals(List.of("env", "DJL_OFFLINE=true", "spark-submit"), dagCommand.subList(0, 3));
    List<String> command = AirflowDag.forItCluster(dagCommand, CapJob.jobConf(inputs));
    System.out.println("[FaultsIT] the DAG's command: " + String.join(" ", dagCommand));
    System.out.println("[FaultsIT] run as: " + String.join(" ", command));

    Map<String, String> site = new LinkedHashMap<>(SparkSubmitter.defaultConf(stack.settings(), 2));
    // the DAG sets these itself; a site default would be overridden anyway
    site.keySet()
        .removeAll(
            List.of(
                "spark.executor.cores",
                "spark.executor.memory",
                "spark.executor.extraJavaOptions"));
    site.put("spark.executor.defaultJavaOptions", "-Dai.djl.pytorch.num_threads=1");
    site.put("spark.locality.wait", "0s");
    site.put("spark.eventLog.enabled", "true");
    site.put("spark.eventLog.dir", CapPipelineIT.eventLogDirOf(stack).toUri().toString());
    site.put("spark.eventLog.compress", "false");
    site.put("spark.eventLog.rolling.enabled", "false");
    HdfsCluster.clientProperties().forEach((k, v) -> site.put("spark.hadoop." + k, v));
    java.nio.file.Files.createDirectories(CapPipelineIT.eventLogDirOf(stack));
    Map<String, String> env =
        Map.of(
            "SPARK_CONF_DIR",
            AirflowDag.siteConfDir(
                    stack.settings().buildDir().resolve("it-airflow-site-conf"), site)
                .toString());

    String name = "cap-airflow";
    long first = CapJob.STEPS_PER_EPOCH;
    long last = CapJob.PRUNE_STEPS;
    try (FileSystem fs = stack.hdfs().fileSystem()) {
      Path firstMarker = new Path(output + "/snapshots/" + first + "/_COMMITTED");
      Path lastDir = new Path(output + "/snapshots/" + last);
      try (SparkSubmitter.Running running =
          stack.submitter().start(name + "-try1", command, env, command)) {
        long deadline = System.nanoTime() + RUN_TIMEOUT.toNanos();
        // complete, not just present: HDFS shows a file from the moment it is created
        while (!markerComplete(fs, firstMarker)
            && running.driver().isAlive()
            && System.nanoTime() < deadline) {
          Thread.sleep(100);
        }
        assertTrue(
            markerComplete(fs, firstMarker),
            () -> firstMarker + " never appeared:\n" + running.driver().tail(40));
        running.driver().kill();
        SparkSubmitter.Result killed = running.await(Duration.ofSeconds(10));
        assertEquals(137, killed.exitCode(), "exit code of a SIGKILLed driver");
        WrapperChecks.assertRanAsPrinted(killed, "spark-submit", List.of("DJL_OFFLINE=true"));
        // a fresh directory with --resume: the first try started from scratch, with progress at
        // INFO
        assertTrue(killed.output().contains("logger io.capprune set to INFO"), killed::describe);
        assertTrue(killed.output().contains("finetune step"), killed::describe);
      }
      assertFalse(
          fs.exists(new Path(lastDir, "_COMMITTED")),
          "the final snapshot was committed before the kill");
      awaitNoActiveApplication();
      String firstSha =
          RunChecks.sha256(
              read(fs, new Path(output + "/snapshots/" + first + "/state.safetensors")));

      // (c) what a driver killed while writing the final snapshot leaves: the tensors, no marker
      fs.delete(lastDir, true);
      try (FSDataOutputStream out = fs.create(new Path(lastDir, "state.safetensors"))) {
        out.write(read(fs, new Path(output + "/snapshots/" + first + "/state.safetensors")));
      }

      SparkSubmitter.Result resumed;
      try (SparkSubmitter.Running retry =
          stack.submitter().start(name + "-try2", command, env, command)) {
        resumed = retry.await(RUN_TIMEOUT);
      }
      stack.measure(
          name + " resume (s)", String.format("%.1f", resumed.elapsed().toMillis() / 1e3));
      assertEquals(0, resumed.exitCode(), resumed::describe);
      WrapperChecks.assertRanAsPrinted(resumed, "spark-submit", List.of("DJL_OFFLINE=true"));
      String log = resumed.output();
      assertTrue(log.contains("finetune: skipped"), resumed::describe);
      assertTrue(
          log.contains(
              "snapshot "
                  + lastDir
                  + " has no _COMMITTED marker (interrupted while writing): skipped"),
          resumed::describe);
      assertTrue(
          log.contains(
              "prune: resuming from snapshot "
                  + new Path(output + "/snapshots/" + first)
                  + " (step "
                  + first
                  + ", epoch 1)"),
          resumed::describe);
      assertTrue(log.contains("writing it again"), resumed::describe);
      assertTrue(
          log.contains("prune step " + last + "/" + last),
          () -> "no progress line at WARN root\n" + resumed.describe());
      assertFalse(
          log.contains("prune step " + first + "/" + last),
          "steps before the snapshot were run again");

      StoredFiles files = StoredFiles.hdfs(fs, new Path(output));
      TreeMap<Long, RunChecks.Snapshot> snapshots = verifyFinished(files, output);
      assertEquals(
          firstSha,
          RunChecks.sha256(
              read(fs, new Path(output + "/snapshots/" + first + "/state.safetensors"))),
          "the snapshot resumed from was not rewritten");
      assertTrue(
          snapshots
                  .get(first)
                  .state()
                  .path("written")
                  .asText()
                  .compareTo(snapshots.get(last).state().path("written").asText())
              < 0);
      // every logged step once, in order, across the kill: 4, 8, ..., 32
      List<Long> logged = new ArrayList<>();
      for (String line :
          new String(files.read("metrics.jsonl"), StandardCharsets.UTF_8).strip().split("\n")) {
        logged.add(
            RunChecks.json(line.getBytes(StandardCharsets.UTF_8), "metrics.jsonl")
                .path("step")
                .asLong());
      }
      List<Long> expected = new ArrayList<>();
      for (long s = 4; s <= last; s += 4) {
        expected.add(s);
      }
      assertEquals(expected, logged, "steps in metrics.jsonl after the resume");
    }
  }

  /**
   * (d) S3 unreachable at start: exit within seconds, a message naming the location, nothing
   * written.
   */
  @Test
  void unreachableS3FailsFastAndWritesNothing() throws Exception {
    int closedPort = Ports.free();
    assertFalse(Ports.isListening(closedPort));
    URI output = URI.create("s3a://" + ItStack.BUCKET + "/it/faults/unreachable");
    List<String> conf = new ArrayList<>(CapJob.jobConf(inputs));
    conf.add("s3.endpoint=\"http://127.0.0.1:" + closedPort + "\"");
    conf.add("s3.path-style-access=true");
    conf.add("s3.access-key=\"it-access-key\"");
    conf.add("s3.secret-key=\"it-secret-key\"");
    String name = "cap-s3-unreachable";
    List<StoredFiles.Entry> hdfsBefore =
        StoredFiles.hdfs(stack.hdfs().fileSystem(), new Path(stack.hdfs().uri("/"))).list();

    SparkSubmitter.Result run =
        stack
            .submitter()
            .run(submission(name, "run", output, conf, Map.of()), Duration.ofMinutes(3));
    stack.measure(name + " (s)", String.format("%.1f", run.elapsed().toMillis() / 1e3));

    assertFalse(run.timedOut(), run::describe);
    assertEquals(1, run.exitCode(), run::describe);
    assertRanAsWrapperPrinted(run);
    assertTrue(run.output().contains("cap-prune: "), run::describe);
    assertTrue(
        run.output().contains(output.toString()),
        () -> "message does not name the output\n" + run.describe());
    assertTrue(
        run.output().contains("127.0.0.1:" + closedPort),
        () -> "message does not name the endpoint\n" + run.describe());
    assertTrue(run.elapsed().compareTo(Duration.ofSeconds(45)) < 0, run::describe);
    assertApplicationNeverRegistered(name);
    assertEquals(
        hdfsBefore,
        StoredFiles.hdfs(stack.hdfs().fileSystem(), new Path(stack.hdfs().uri("/"))).list(),
        "HDFS changed");
    assertEquals(List.of(), stack.s3().keys("it/faults/"), "keys written to the bucket");
  }

  /**
   * (e) an output directory that holds another run: exit code 1, a message, the directory
   * untouched.
   */
  @Test
  void outputHoldingAnotherRunIsRefusedAndLeftUnchanged() throws Exception {
    URI output = stack.hdfs().uri("/it/faults/other-run");
    try (FileSystem fs = stack.hdfs().fileSystem()) {
      write(
          fs,
          new Path(output + "/run.json"),
          "{\"identity\": {\"task\": \"mrpc\", \"model\": \"hdfs:///models/x\"}}\n");
      write(fs, new Path(output + "/model/config.json"), "{\"model_type\": \"bert\"}\n");
    }
    StoredFiles files = StoredFiles.hdfs(stack.hdfs().fileSystem(), new Path(output));
    List<StoredFiles.Entry> before = files.list();
    Map<String, String> shaBefore = checksums(files, before);
    String name = "cap-other-run";

    SparkSubmitter.Result run =
        stack
            .submitter()
            .run(
                submission(name, "run", output, CapJob.jobConf(inputs), Map.of()),
                Duration.ofMinutes(3));
    stack.measure(name + " (s)", String.format("%.1f", run.elapsed().toMillis() / 1e3));

    assertEquals(1, run.exitCode(), run::describe);
    assertRanAsWrapperPrinted(run);
    assertTrue(
        run.output()
            .contains(
                "cap-prune: output directory " + new Path(output) + " already holds another run"),
        run::describe);
    assertTrue(run.output().contains("pass --overwrite to replace it"), run::describe);
    assertApplicationNeverRegistered(name);
    List<StoredFiles.Entry> after = files.list();
    assertEquals(before, after, "files, sizes or modification times changed");
    assertEquals(shaBefore, checksums(files, after));
  }

  // ----------------------------------------------------------------------------------------------

  private static SparkSubmitter.Submission submission(
      String name,
      String command,
      URI output,
      List<String> jobConf,
      Map<String, String> extraSpark) {
    Map<String, String> spark = new LinkedHashMap<>(extraSpark);
    HdfsCluster.clientProperties().forEach((k, v) -> spark.put("spark.hadoop." + k, v));
    SparkSubmitter.Submission s =
        CapJob.submission(
            stack.settings(),
            name,
            stack.cluster().masterUrl(),
            command,
            output,
            jobConf,
            spark,
            CapPipelineIT.eventLogDirOf(stack));
    System.out.println("[FaultsIT] " + String.join(" ", stack.submitter().command(s)));
    return s;
  }

  /** deploy/spark-submit-standalone.sh's --dry-run is what bin/spark-submit received. */
  private static void assertRanAsWrapperPrinted(SparkSubmitter.Result run) {
    WrapperChecks.assertRanAsPrinted(
        run, stack.submitter().sparkHome().sparkSubmit().toString(), List.of("DJL_OFFLINE=true"));
  }

  /** The checks of a finished run that do not depend on how it got there. */
  private static TreeMap<Long, RunChecks.Snapshot> verifyFinished(StoredFiles files, URI output)
      throws Exception {
    TreeMap<Long, RunChecks.Snapshot> snapshots = RunChecks.verifySnapshots(files, "");
    assertEquals(
        Set.of(CapJob.STEPS_PER_EPOCH * 1L, CapJob.PRUNE_STEPS),
        snapshots.keySet(),
        files::describe);
    RunChecks.Snapshot last = snapshots.lastEntry().getValue();
    assertTrue(last.isFinal());
    assertEquals(CapJob.PRUNE_STEPS, last.state().path("total_steps").asLong());
    double sparsity =
        RunChecks.verifyExport(
            files,
            CheckpointStore.read(output + "/model", hdfsConf),
            last,
            CapJob.FINAL_KEPT_FRACTION);
    assertEquals(1 - CapJob.FINAL_KEPT_FRACTION, sparsity, 0.005);
    RunChecks.verifyMetrics(files, last);
    assertEquals(
        "step " + CapJob.PRUNE_STEPS,
        new String(files.read("_PRUNED"), StandardCharsets.UTF_8).strip());
    assertEquals(CapJob.PRUNE_STEPS, RunChecks.lastLoggedStep(files));
    return snapshots;
  }

  /** A killed driver's executors go when the master notices; the next run needs the cores. */
  private static void awaitNoActiveApplication() throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
    JsonNode state = stack.cluster().masterState();
    while (state.path("activeapps").size() > 0 && System.nanoTime() < deadline) {
      Thread.sleep(250);
      state = stack.cluster().masterState();
    }
    assertEquals(0, state.path("activeapps").size(), state.toString());
  }

  /** It failed before the SparkContext: the master never saw it. */
  private static void assertApplicationNeverRegistered(String name) throws Exception {
    JsonNode state = stack.cluster().masterState();
    for (String list : List.of("activeapps", "completedapps")) {
      state
          .path(list)
          .forEach(app -> assertNotEquals(name, app.path("name").asText(), state::toString));
    }
  }

  private static Map<String, String> checksums(StoredFiles files, List<StoredFiles.Entry> entries) {
    Map<String, String> out = new TreeMap<>();
    entries.forEach(e -> out.put(e.path(), RunChecks.sha256(files.read(e.path()))));
    return out;
  }

  private static boolean markerComplete(FileSystem fs, Path marker) {
    try {
      return fs.exists(marker)
          && RunChecks.json(read(fs, marker), marker.toString()).path("files").size() == 2;
    } catch (Exception | AssertionError e) {
      return false;
    }
  }

  private static byte[] read(FileSystem fs, Path p) throws Exception {
    try (var in = fs.open(p)) {
      return in.readAllBytes();
    }
  }

  private static void write(FileSystem fs, Path p, String text) throws Exception {
    try (FSDataOutputStream out = fs.create(p, false)) {
      out.write(text.getBytes(StandardCharsets.UTF_8));
    }
  }
}
