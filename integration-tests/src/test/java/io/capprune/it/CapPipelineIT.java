package io.capprune.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.checkpoint.CheckpointStore;
import io.capprune.core.checkpoint.HfCheckpoint;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The real CAP job (finetune, prune, evaluate, export) submitted with spark-submit to a standalone
 * cluster of two 1-core workers, once with inputs, snapshots and output on HDFS and once on S3.
 * What it wrote is read back with the HDFS client and the AWS SDK and checked against the checksums
 * the job wrote, the project's own checkpoint reader and the configured step counts and sparsity.
 */
class CapPipelineIT {

  private static final Duration RUN_TIMEOUT = Duration.ofMinutes(8);

  private static ItStack stack;
  private static Path localInputs;

  @BeforeAll
  static void startStack() throws Exception {
    stack = ItStack.start("CapPipelineIT");
    localInputs = CapJob.demoInputs(stack.settings());
  }

  @AfterAll
  static void stopStack() {
    if (stack != null) {
      stack.close();
    }
    List<String> leftovers = ItStack.leftoverProcesses();
    assertTrue(leftovers.isEmpty(), () -> "processes left running after close: " + leftovers);
  }

  @Test
  void capRunOnHdfs() throws Exception {
    URI inputs = stack.hdfs().uri("/it/cap-inputs");
    URI output = stack.hdfs().uri("/it/cap-run");
    Configuration hdfsConf = new Configuration();
    HdfsCluster.clientProperties().forEach(hdfsConf::set);
    CapJob.upload(localInputs, inputs, hdfsConf);

    Map<String, String> spark = new LinkedHashMap<>();
    HdfsCluster.clientProperties().forEach((k, v) -> spark.put("spark.hadoop." + k, v));
    String name = "cap-run-hdfs";
    SparkSubmitter.Result run = submit(name, output, CapJob.jobConf(inputs), spark);

    try (FileSystem fs = stack.hdfs().fileSystem()) {
      StoredFiles files = StoredFiles.hdfs(fs, new org.apache.hadoop.fs.Path(output));
      verifyRun(run, name, files, output.toString(), hdfsConf, "");
      // spark.hadoop.* reached the driver, which writes snapshots outside any Spark task
      assertEquals(
          1,
          fs.getFileStatus(
                  new org.apache.hadoop.fs.Path(
                      output + "/snapshots/" + CapJob.PRUNE_STEPS + "/state.safetensors"))
              .getReplication(),
          "replication of a driver-written file");
    }
  }

  @Test
  void capRunOnS3() throws Exception {
    S3Server s3 = stack.s3();
    URI inputs = s3.s3aUri("it/cap-inputs");
    String outputKey = "it/cap-run";
    URI output = s3.s3aUri(outputKey);
    Configuration s3Conf = new Configuration();
    s3.s3aProperties().forEach(s3Conf::set);
    CapJob.upload(localInputs, inputs, s3Conf);

    // The job's own keys (cap.s3.*) this time, not spark.hadoop.fs.s3a.*: the secret must stay
    // masked.
    String secret = s3.s3aProperties().get("fs.s3a.secret.key");
    List<String> conf = new ArrayList<>(CapJob.jobConf(inputs));
    conf.add("s3.endpoint=\"" + s3.endpoint() + "\"");
    conf.add("s3.path-style-access=true");
    conf.add("s3.access-key=\"" + s3.s3aProperties().get("fs.s3a.access.key") + "\"");
    conf.add("s3.secret-key=\"" + secret + "\"");
    String name = "cap-run-s3";
    SparkSubmitter.Result run = submit(name, output, conf, Map.of());

    verifyRun(
        run,
        name,
        StoredFiles.s3(s3.client(), s3.bucket(), outputKey),
        output.toString(),
        s3Conf,
        secret);
    assertFalse(run.output().contains(secret), "the driver log shows the S3 secret key");
  }

  private static SparkSubmitter.Result submit(
      String name, URI output, List<String> jobConf, Map<String, String> spark)
      throws InterruptedException {
    SparkSubmitter.Submission submission =
        CapJob.submission(
            stack.settings(),
            name,
            stack.cluster().masterUrl(),
            "run",
            output,
            jobConf,
            spark,
            eventLogDir());
    System.out.println(
        "[CapPipelineIT] " + String.join(" ", stack.submitter().command(submission)));
    SparkSubmitter.Result run = stack.submitter().run(submission, RUN_TIMEOUT);
    stack.measure(name + " (s)", String.format("%.1f", run.elapsed().toMillis() / 1e3));
    assertEquals(0, run.exitCode(), run::describe);
    // what ran is what deploy/spark-submit-standalone.sh --dry-run prints, and the driver JVM got
    // its settings
    WrapperChecks.SubmitLog log =
        WrapperChecks.assertRanAsPrinted(
            run,
            stack.submitter().sparkHome().sparkSubmit().toString(),
            List.of("DJL_OFFLINE=true"));
    assertTrue(
        log.javaCommand()
            .contains("-Dlog4j2.configurationFile=" + CapJob.log4jConfig(stack.settings())),
        log.javaCommand()::toString);
    return run;
  }

  static Path eventLogDir() {
    return eventLogDirOf(stack);
  }

  static Path eventLogDirOf(ItStack stack) {
    return stack.settings().logDir().resolve("spark-events");
  }

  /**
   * Everything a finished run must show: training work in both executor JVMs, the snapshots and
   * their markers, the exported model and its sparsity, the metrics, the step count.
   */
  private static void verifyRun(
      SparkSubmitter.Result run,
      String name,
      StoredFiles files,
      String output,
      Configuration readerConf,
      String secret)
      throws Exception {
    assertExecutorsTrained(stack, name, run);

    TreeMap<Long, RunChecks.Snapshot> snapshots = RunChecks.verifySnapshots(files, secret);
    assertEquals(
        Set.of(CapJob.STEPS_PER_EPOCH * 1L, CapJob.PRUNE_STEPS),
        snapshots.keySet(),
        () -> "snapshot steps (one per epoch) in " + files.describe());
    RunChecks.Snapshot last = snapshots.lastEntry().getValue();
    assertTrue(last.isFinal(), "the last snapshot is marked final");
    assertEquals(CapJob.PRUNE_EPOCHS, last.epoch());
    assertFalse(snapshots.firstEntry().getValue().isFinal());

    HfCheckpoint model = CheckpointStore.read(output + "/model", readerConf);
    double sparsity = RunChecks.verifyExport(files, model, last, CapJob.FINAL_KEPT_FRACTION);
    assertEquals(1 - CapJob.FINAL_KEPT_FRACTION, sparsity, 0.005, "overall sparsity");
    var metrics = RunChecks.verifyMetrics(files, last);
    stack.measure(name + " pruned dev accuracy", metrics.path("pruned").path("acc").asText());
    stack.measure(name + " teacher dev accuracy", metrics.path("teacher").path("acc").asText());
    assertEquals(
        "step " + CapJob.PRUNE_STEPS,
        new String(files.read("_PRUNED"), StandardCharsets.UTF_8).strip());
    assertEquals(CapJob.PRUNE_STEPS, RunChecks.lastLoggedStep(files), "last step in metrics.jsonl");
    assertTrue(
        run.output().contains("prune step " + CapJob.PRUNE_STEPS + "/" + CapJob.PRUNE_STEPS),
        run::describe);
  }

  /**
   * Training steps (finetune and prune) ran as tasks in two distinct executors, each a JVM that a
   * different worker started (its stderr is in that worker's work directory), never the driver.
   */
  static void assertExecutorsTrained(ItStack stack, String appName, SparkSubmitter.Result run)
      throws Exception {
    EventLog events = EventLog.of(eventLogDirOf(stack), appName);
    for (String stage : List.of("finetune step", "prune step")) {
      Map<String, Integer> byExecutor = events.successfulTasksByExecutor(stage);
      assertTrue(
          byExecutor.size() >= 2 && !byExecutor.containsKey("driver"),
          () -> stage + " tasks by executor " + byExecutor + " (" + events + ")");
    }
    List<Path> stderrs = new ArrayList<>();
    for (int w = 1; w <= 2; w++) {
      Path appDir =
          stack.settings().logDir().resolve("spark-worker-" + w + "-work").resolve(events.appId());
      assertTrue(
          Files.isDirectory(appDir), () -> appDir + " missing: worker did not start an executor");
      try (var dirs = Files.list(appDir)) {
        dirs.map(d -> d.resolve("stderr")).filter(Files::isRegularFile).forEach(stderrs::add);
      }
    }
    assertTrue(stderrs.size() >= 2, () -> "executor logs " + stderrs);
  }
}
