package io.capprune.spark.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RunComparisonTest {
  @TempDir Path dir;

  private Path run(String name, String method, double teacher, double pruned, double sparsity)
      throws IOException {
    Path r = dir.resolve(name);
    Files.createDirectories(r);
    Files.writeString(
        r.resolve("run.json"), "{\"identity\":{\"task\":\"MRPC\",\"method\":\"" + method + "\"}}");
    Files.writeString(
        r.resolve("metrics.json"),
        "{\"task\":\"MRPC\",\"teacher\":{\"acc\":"
            + teacher
            + ",\"f1\":0.9},\"pruned\":{\"acc\":"
            + pruned
            + ",\"f1\":0.8},\"pruned_step\":600}");
    Files.writeString(r.resolve("sparsity.json"), "{\"sparsity\":" + sparsity + ",\"kept\":10}");
    FileSystem fs = FileSystem.getLocal(new Configuration());
    try (MetricsLog log = MetricsLog.create(fs, new org.apache.hadoop.fs.Path(r.toUri()), 100)) {
      for (StepRecord rec : ReportFixtures.run(600, 50)) {
        log.append(rec);
      }
    }
    return r;
  }

  @Test
  void tableHasOneRowPerRunWithShareOfTeacherSparsityStepsAndTime() throws IOException {
    Path cap = run("cap", "cap-movement", 0.8, 0.76, 0.9001);
    Path base = run("base", "movement", 0.8, 0.72, 0.9);
    List<RunComparison.Run> runs =
        RunComparison.readAll(List.of(cap.toString(), base.toString()), new Configuration());
    assertEquals("cap-movement", runs.get(0).method());
    assertEquals(600, runs.get(0).steps());
    assertEquals(300.0, runs.get(0).pruneSeconds(), 1e-9);
    String md = RunComparison.markdown(runs);
    String[] lines = md.split("\n");
    assertEquals(4, lines.length, md);
    assertTrue(
        lines[0].startsWith(
            "| run | method | teacher acc | pruned acc | pruned f1 | pruned/teacher acc |"),
        lines[0]);
    assertTrue(
        lines[2].contains(
            "| cap-movement | 0.8000 | 0.7600 | 0.8000 | 95.0 % | 90.01 % | 600 | 00:05:00 |"),
        lines[2]);
    assertTrue(
        lines[3].contains("| movement | 0.8000 | 0.7200 | 0.8000 | 90.0 % | 90.00 % | 600 |"),
        lines[3]);
  }

  @Test
  void aRunWithOnlyATeacherHasARowWithTheTeachersMetric() throws IOException {
    Path cap = run("cap", "cap-movement", 0.8, 0.76, 0.9001);
    Path teacherOnly = dir.resolve("teacher-only");
    Files.createDirectories(teacherOnly);
    Files.writeString(
        teacherOnly.resolve("run.json"),
        "{\"identity\":{\"task\":\"MRPC\",\"method\":\"movement\"}}");
    Files.writeString(
        teacherOnly.resolve("metrics.json"),
        "{\"task\":\"MRPC\",\"teacher\":{\"acc\":0.81,\"f1\":0.9},\"scored\":{\"teacher\":\"teacher/\"}}");
    List<RunComparison.Run> runs =
        RunComparison.readAll(List.of(cap.toString(), teacherOnly.toString()), new Configuration());
    assertTrue(runs.get(1).pruned().isEmpty());
    String[] lines = RunComparison.markdown(runs).split("\n");
    assertTrue(
        lines[3].contains("| movement (teacher only) | 0.8100 | - | - | - | - | 0 | - |"),
        lines[3]);
    // Only teachers: the teacher's metrics name the columns.
    String alone = RunComparison.markdown(List.of(runs.get(1)));
    assertTrue(alone.startsWith("| run | method | teacher acc | pruned acc | pruned f1 |"), alone);
  }

  @Test
  void aRunWithoutAnyDevMetricIsRefused() throws IOException {
    Path r = run("cap", "cap-movement", 0.8, 0.76, 0.9);
    Files.writeString(r.resolve("metrics.json"), "{\"task\":\"MRPC\"}");
    IOException e =
        assertThrows(
            IOException.class, () -> RunComparison.read(r.toString(), new Configuration()));
    assertTrue(e.getMessage().contains("has no dev metrics"), e.getMessage());
  }

  @Test
  void aRunWithoutMetricsIsNamed() throws IOException {
    Path r = run("cap", "cap-movement", 0.8, 0.76, 0.9);
    Files.delete(r.resolve("metrics.json"));
    IOException e =
        assertThrows(
            IOException.class, () -> RunComparison.read(r.toString(), new Configuration()));
    assertTrue(
        e.getMessage().contains(r.resolve("metrics.json").toString())
            && e.getMessage().contains("does not exist"),
        e.getMessage());
  }

  @Test
  void badJsonIsNamed() throws IOException {
    Path r = run("cap", "cap-movement", 0.8, 0.76, 0.9);
    Files.writeString(r.resolve("sparsity.json"), "{\"sparsity\": ");
    IOException e =
        assertThrows(
            IOException.class, () -> RunComparison.read(r.toString(), new Configuration()));
    assertTrue(
        e.getMessage().contains("sparsity.json") && e.getMessage().contains("not valid JSON"),
        e.getMessage());
  }
}
