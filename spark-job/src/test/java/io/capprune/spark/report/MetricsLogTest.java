package io.capprune.spark.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MetricsLogTest {

  @TempDir java.nio.file.Path tmp;
  private FileSystem fs;
  private Path out;

  @BeforeEach
  void localFileSystem() throws IOException {
    fs = FileSystem.getLocal(new Configuration());
    out = new Path(tmp.toUri());
  }

  private java.nio.file.Path metricsFile() {
    return tmp.resolve(MetricsLog.FILE_NAME);
  }

  private List<String> lines() throws IOException {
    return Files.readAllLines(metricsFile(), StandardCharsets.UTF_8);
  }

  @Test
  void roundTripKeepsEveryValueIncludingTermsThatAreOff() throws IOException {
    List<StepRecord> run = ReportFixtures.run(1000, 10);
    try (MetricsLog log = MetricsLog.create(fs, out, 25)) {
      for (StepRecord r : run) {
        log.append(r);
      }
    }
    List<StepRecord> back = MetricsLog.read(fs, new Path(out, MetricsLog.FILE_NAME));
    assertEquals(run, back); // record equality compares doubles exactly, NaN equal to NaN
    assertTrue(Double.isNaN(back.get(0).snc()), "SnC is off in epoch 1 and must read back as off");
    assertEquals(Map.of("accuracy", run.get(19).dev().get("accuracy")), back.get(19).dev());
    assertEquals(100, lines().size());
  }

  @Test
  void jsonLeavesOutTermsThatAreOffAndKeepsADivergedLoss() {
    StepRecord r =
        StepRecord.builder(3, 9)
            .epoch(1)
            .loss(Double.NaN)
            .ce(0.5)
            .sparsity(0.25)
            .learningRate(1e-5)
            .dev(Map.of("mcc", Double.NaN))
            .build();
    String json = MetricsLog.toJson(r);
    assertEquals(
        "{\"step\":3,\"total_steps\":9,\"epoch\":1,\"loss\":\"NaN\",\"ce\":0.5,"
            + "\"sparsity\":0.25,\"learning_rate\":1.0E-5,\"dev\":{\"mcc\":\"NaN\"}}",
        json);
    assertEquals(r, MetricsLog.fromJson(json, "x"));
  }

  @Test
  void fileIsRewrittenWholeAtEachFlushNeverAppended() throws IOException {
    List<StepRecord> run = ReportFixtures.run(100, 10);
    MetricsLog log = MetricsLog.create(fs, out, 3);
    log.append(run.get(0));
    log.append(run.get(1));
    assertFalse(Files.exists(metricsFile()), "nothing is written before the first flush");
    log.append(run.get(2));
    assertEquals(1, log.flushCount());
    assertEquals(3, lines().size());
    log.append(run.get(3));
    log.append(run.get(4));
    assertEquals(3, lines().size(), "records 4 and 5 wait for the next flush");
    assertEquals(5, log.records().size());
    log.close();
    assertEquals(2, log.flushCount());
    assertEquals(5, lines().size());
    assertEquals(MetricsLog.toJson(run.get(4)), lines().get(4));

    // A new log over an old file replaces it at its first flush.
    try (MetricsLog fresh = MetricsLog.create(fs, out, 100)) {
      fresh.append(run.get(0));
    }
    assertEquals(List.of(MetricsLog.toJson(run.get(0))), lines());
  }

  @Test
  void resumeDropsTheStepsTheResumedRunWillRepeat() throws IOException {
    List<StepRecord> run = ReportFixtures.run(100, 10);
    try (MetricsLog log = MetricsLog.create(fs, out, 100)) {
      for (StepRecord r : run.subList(0, 5)) { // steps 10..50, then the job dies
        log.append(r);
      }
    }
    // The newest committed snapshot is at step 30.
    try (MetricsLog resumed = MetricsLog.resume(fs, out, 100, 30)) {
      assertEquals(run.subList(0, 3), resumed.records());
      StepRecord redone = StepRecord.builder(40, 100).loss(0.123).build();
      resumed.append(redone);
      var e = assertThrows(IllegalArgumentException.class, () -> resumed.append(run.get(1)));
      assertTrue(
          e.getMessage()
              .startsWith("metrics must be logged in step order: step 20 after step 40 in "),
          e.getMessage());
    }
    List<StepRecord> back = MetricsLog.read(fs, new Path(out, MetricsLog.FILE_NAME));
    assertEquals(List.of(10L, 20L, 30L, 40L), back.stream().map(StepRecord::step).toList());
    assertEquals(0.123, back.get(3).loss(), 0);

    MetricsLog none = MetricsLog.resume(fs, new Path(out, "elsewhere"), 10, 30);
    assertTrue(none.records().isEmpty());
  }

  @Test
  void badLinesNameFileLineAndKey() throws IOException {
    Path file = new Path(out, MetricsLog.FILE_NAME);
    String ok = "{\"step\":1,\"total_steps\":10,\"epoch\":1,\"loss\":0.5}\n";
    assertMessage(
        ok + "{\"step\":\"two\",\"total_steps\":10,\"epoch\":1}\n",
        file + ":2: key 'step' must be an integer, got \"two\"");
    assertMessage(ok + "\n{\"step\":2,\"epoch\":1}\n", file + ":3: missing key 'total_steps'");
    assertMessage(
        ok + "{\"step\":2,\"total_steps\":10,\"epoch\":1,\"kd\":[1]}\n",
        file + ":2: key 'kd' must be a number, got [1]");
    assertMessage(
        ok + "{\"step\":2,\"total_steps\":10,\"epoch\":1,\"dev\":{\"acc\":\"high\"}}\n",
        file + ":2: key 'dev.acc' must be a number, got \"high\"");
    assertMessage(
        ok + "{\"step\":2,\"total_steps\":10,\"epoch\":1,\"sparsity\":1.5}\n",
        file + ":2: sparsity is a fraction in [0, 1], got 1.5");
    assertMessage(ok + ok, file + ":2: step 1 does not follow step 1");
    assertMessage("[1,2]\n" + ok, file + ":1: expected a JSON object per line");
    assertMessage("{\"step\":1,\"tot\n" + ok, file + ":1: not valid JSON");
  }

  @Test
  void aTornLastLineIsDroppedButNotATornMiddleLine() throws IOException {
    Path file = new Path(out, MetricsLog.FILE_NAME);
    String ok = "{\"step\":1,\"total_steps\":10,\"epoch\":1,\"loss\":0.5}\n";
    write(ok + "{\"step\":2,\"total_steps\":1");
    List<StepRecord> back = MetricsLog.read(fs, file);
    assertEquals(1, back.size());
    assertEquals(0.5, back.get(0).loss(), 0);
    assertMessage(ok + "{\"step\":2,\"total_steps\":1\n", file + ":2: not valid JSON");
  }

  /** Not a timed test: prints what a rewrite costs at the size of a long run's log. */
  @Test
  void rewriteCostOfALongRunIsPrinted() throws IOException {
    List<StepRecord> run = ReportFixtures.run(100_000, 10);
    MetricsLog log = MetricsLog.create(fs, out, Integer.MAX_VALUE);
    for (StepRecord r : run) {
      log.append(r);
    }
    long t0 = System.nanoTime();
    log.flush();
    double ms = (System.nanoTime() - t0) / 1e6;
    long bytes = Files.size(metricsFile());
    assertEquals(10_000, lines().size());
    System.out.printf(
        "metrics.jsonl rewrite: %d records, %.1f MB, %.0f ms on the local filesystem%n",
        run.size(), bytes / 1e6, ms);
  }

  private void write(String text) throws IOException {
    Files.writeString(metricsFile(), text, StandardCharsets.UTF_8);
    Files.deleteIfExists(tmp.resolve("." + MetricsLog.FILE_NAME + ".crc"));
  }

  private void assertMessage(String content, String expectedPrefix) throws IOException {
    write(content);
    var e =
        assertThrows(
            IllegalArgumentException.class,
            () -> MetricsLog.read(fs, new Path(out, MetricsLog.FILE_NAME)));
    assertTrue(
        e.getMessage().startsWith(expectedPrefix),
        "expected message starting with\n  " + expectedPrefix + "\nbut got\n  " + e.getMessage());
  }
}
