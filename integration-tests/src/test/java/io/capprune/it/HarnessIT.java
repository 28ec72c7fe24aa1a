package io.capprune.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.capprune.it.apps.WriteAndCount;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Proves the harness on real parts: a Spark standalone master and two workers (separate JVMs), HDFS
 * and an S3 server on this machine; a small application of our own is submitted with spark-submit
 * against hdfs:// and s3a://, and what it wrote is read back through the HDFS client and the AWS
 * SDK.
 */
class HarnessIT {

  private static final int RECORDS = 10_000;
  private static final int PARTITIONS = 4;
  private static final Duration SUBMIT_TIMEOUT = Duration.ofMinutes(3);

  private static ItStack stack;
  private static ItSettings settings;
  private static SparkStandaloneCluster cluster;
  private static HdfsCluster hdfs;
  private static S3Server s3;
  private static SparkSubmitter submitter;
  private static java.nio.file.Path testAppJar;

  @BeforeAll
  static void startEverything() throws Exception {
    // the same stack as the CAP ITs (s3proxy, HDFS, master + 2 one-core workers, started in
    // parallel)
    stack = ItStack.start("HarnessIT");
    settings = stack.settings();
    cluster = stack.cluster();
    hdfs = stack.hdfs();
    s3 = stack.s3();
    submitter = stack.submitter();
    testAppJar =
        TestJar.build(
            testClassesDir(),
            WriteAndCount.class.getPackageName(),
            settings.buildDir().resolve("it-jars/it-apps.jar"));
  }

  @AfterAll
  static void stopEverything() {
    if (stack != null) {
      stack.close();
    }
    // Every child (daemons, executors, drivers, s3proxy) must be gone, or the next test class
    // inherits them.
    List<String> leftovers = ItStack.leftoverProcesses();
    assertTrue(leftovers.isEmpty(), () -> "processes left running after close: " + leftovers);
  }

  @Test
  void clusterHasTwoAliveWorkersWithOneCoreEach() throws Exception {
    JsonNode state = cluster.masterState();
    assertEquals("ALIVE", state.path("status").asText(), state::toString);
    List<JsonNode> alive = new ArrayList<>();
    state
        .path("workers")
        .forEach(
            w -> {
              if ("ALIVE".equals(w.path("state").asText())) {
                alive.add(w);
              }
            });
    assertEquals(2, alive.size(), state::toString);
    for (JsonNode w : alive) {
      assertEquals(1, w.path("cores").asInt(), w::toString);
      assertEquals(1536, w.path("memory").asInt(), w::toString);
    }
  }

  @Test
  void writesAndCountsOnHdfsWithTwoExecutors() throws Exception {
    URI output = hdfs.uri("/it/write-and-count");
    SparkSubmitter.Result run =
        submitWriteAndCount("hdfs-write-and-count", output, HdfsCluster.clientProperties());
    stack.measure("hdfs:// submission (s)", String.format("%.1f", run.elapsed().toMillis() / 1e3));
    assertEquals(0, run.exitCode(), run::describe);

    List<String> records = new ArrayList<>();
    String result;
    try (FileSystem fs = hdfs.fileSystem()) {
      Path dir = new Path(output);
      List<String> parts = new ArrayList<>();
      for (FileStatus status : fs.listStatus(dir)) {
        String name = status.getPath().getName();
        if (name.startsWith("part-")) {
          parts.add(name);
          records.addAll(readLines(fs, status.getPath()));
        }
      }
      assertEquals(
          List.of("part-00000", "part-00001", "part-00002", "part-00003"),
          parts.stream().sorted().toList());
      assertEquals(
          1,
          fs.getFileStatus(new Path(dir, "part-00000")).getReplication(),
          "dfs.replication=1 must reach the executors through spark.hadoop.*");
      result = String.join("\n", readLines(fs, new Path(dir, WriteAndCount.RESULT_FILE)));
    }
    assertRecordsAndExecutors(records, result, run);
  }

  @Test
  void writesAndCountsOnS3WithTwoExecutors() throws Exception {
    String prefix = "it/write-and-count";
    SparkSubmitter.Result run =
        submitWriteAndCount("s3a-write-and-count", s3.s3aUri(prefix), s3.s3aProperties());
    stack.measure("s3a:// submission (s)", String.format("%.1f", run.elapsed().toMillis() / 1e3));
    assertEquals(0, run.exitCode(), run::describe);

    List<String> keys = s3.keys(prefix + "/");
    List<String> parts = keys.stream().filter(k -> k.contains("/part-")).toList();
    assertEquals(
        List.of(
            prefix + "/part-00000",
            prefix + "/part-00001",
            prefix + "/part-00002",
            prefix + "/part-00003"),
        parts,
        () -> "keys in bucket: " + keys);
    List<String> records = new ArrayList<>();
    parts.forEach(k -> records.addAll(s3.read(k).lines().toList()));
    assertRecordsAndExecutors(records, s3.read(prefix + "/" + WriteAndCount.RESULT_FILE), run);
  }

  @Test
  void unreachableS3EndpointFailsFastBeforeAskingForExecutors() throws Exception {
    int closedPort = Ports.free();
    assertFalse(Ports.isListening(closedPort));
    URI deadEndpoint = URI.create("http://127.0.0.1:" + closedPort);
    Map<String, String> hadoop = new LinkedHashMap<>(S3Server.s3aProperties(deadEndpoint));
    // What an operator sets for a fail-fast job; S3A's defaults retry a refused connection for
    // minutes.
    hadoop.put("fs.s3a.attempts.maximum", "1");
    hadoop.put("fs.s3a.retry.limit", "1");
    hadoop.put("fs.s3a.retry.interval", "100ms");
    URI output = URI.create("s3a://" + ItStack.BUCKET + "/it/unreachable");
    String name = "s3a-unreachable";

    SparkSubmitter.Result run = submitWriteAndCount(name, output, hadoop);
    stack.measure(
        "unreachable s3a:// submission (s)", String.format("%.1f", run.elapsed().toMillis() / 1e3));

    assertFalse(run.timedOut(), run::describe);
    assertEquals(4, run.exitCode(), run::describe);
    assertTrue(run.output().contains("cannot reach output " + output), run::describe);
    assertTrue(run.output().contains("127.0.0.1:" + closedPort), run::describe);
    assertTrue(run.elapsed().compareTo(Duration.ofSeconds(45)) < 0, run::describe);
    // It failed before the SparkContext: the master never saw the application.
    JsonNode state = cluster.masterState();
    for (String list : List.of("activeapps", "completedapps")) {
      state
          .path(list)
          .forEach(app -> assertNotEquals(name, app.path("name").asText(), state::toString));
    }
  }

  private static SparkSubmitter.Result submitWriteAndCount(
      String name, URI output, Map<String, String> hadoop) throws InterruptedException {
    Map<String, String> conf = SparkSubmitter.defaultConf(settings, 2);
    hadoop.forEach((k, v) -> conf.put("spark.hadoop." + k, v));
    SparkSubmitter.Submission submission =
        new SparkSubmitter.Submission(
            name,
            cluster.masterUrl(),
            WriteAndCount.class.getName(),
            testAppJar,
            // the application jar brings S3A and the AWS SDK (shaded), as for the real job
            List.of(settings.appJar()),
            conf,
            List.of(
                output.toString(), Integer.toString(RECORDS), Integer.toString(PARTITIONS), "300"));
    System.out.println("[HarnessIT] " + String.join(" ", submitter.command(submission)));
    return submitter.run(submission, SUBMIT_TIMEOUT);
  }

  /**
   * Every record 0..RECORDS-1 exactly once, the job's own counts agree, and the tasks ran in two
   * distinct executor JVMs, each a child of one of our two workers (not the driver, not local
   * mode).
   */
  private static void assertRecordsAndExecutors(
      List<String> records, String result, SparkSubmitter.Result run) {
    assertEquals(RECORDS, records.size(), run::describe);
    Set<Long> indices = new HashSet<>();
    for (String line : records) {
      String[] f = line.split("\t");
      assertEquals(2, f.length, () -> "record line '" + line + "'");
      long i = Long.parseLong(f[0]);
      assertEquals("record-" + i, f[1], () -> "record line '" + line + "'");
      assertTrue(indices.add(i), () -> "record " + i + " written twice");
    }
    assertEquals(0L, indices.stream().mapToLong(Long::longValue).min().orElseThrow());
    assertEquals(RECORDS - 1L, indices.stream().mapToLong(Long::longValue).max().orElseThrow());

    Map<String, String> values = new HashMap<>();
    List<String[]> tasks = new ArrayList<>();
    for (String line : result.lines().toList()) {
      if (line.startsWith("write\t") || line.startsWith("count\t")) {
        tasks.add(line.split("\t"));
      } else if (line.contains("=")) {
        values.put(line.substring(0, line.indexOf('=')), line.substring(line.indexOf('=') + 1));
      }
    }
    assertEquals(Integer.toString(RECORDS), values.get("records_counted"), result);
    assertEquals(Integer.toString(RECORDS), values.get("distinct_indices"), result);
    assertEquals(2 * PARTITIONS, tasks.size(), result);
    long writtenByTasks =
        tasks.stream().filter(t -> t[0].equals("write")).mapToLong(t -> Long.parseLong(t[2])).sum();
    assertEquals(RECORDS, writtenByTasks, result);

    Set<Long> executorPids = new HashSet<>();
    Set<Long> executorParents = new HashSet<>();
    Set<String> executorIds = new HashSet<>();
    for (String[] t : tasks) {
      executorPids.add(Long.parseLong(t[3]));
      executorParents.add(Long.parseLong(t[4]));
      executorIds.add(t[6]);
    }
    assertEquals(
        2,
        executorPids.size(),
        () -> "executor JVMs that ran tasks: " + executorPids + "\n" + result);
    assertEquals(2, executorIds.size(), result);
    assertFalse(executorIds.contains("driver"), result);
    assertFalse(executorPids.contains(Long.parseLong(values.get("driver_pid"))), result);
    assertEquals(
        Set.copyOf(cluster.workerPids()),
        executorParents,
        () ->
            "executor parents "
                + executorParents
                + " are not the worker JVMs "
                + cluster.workerPids());
  }

  private static List<String> readLines(FileSystem fs, Path file) throws IOException {
    try (BufferedReader r =
        new BufferedReader(new InputStreamReader(fs.open(file), StandardCharsets.UTF_8))) {
      return r.lines().toList();
    }
  }

  private static java.nio.file.Path testClassesDir() throws URISyntaxException {
    return java.nio.file.Path.of(
        WriteAndCount.class.getProtectionDomain().getCodeSource().getLocation().toURI());
  }
}
