package io.capprune.spark.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RunSummaryTest {

  private static Map<String, String> locations(String out) {
    Map<String, String> where = new LinkedHashMap<>();
    where.put("model", out + "/model");
    where.put("plots", out + "/loss.png, " + out + "/sparsity.png, " + out + "/dev-metric.png");
    where.put("metrics", out + "/metrics.jsonl");
    return where;
  }

  @Test
  void summaryOfARunHasItsNumbers() {
    List<StepRecord> run = ReportFixtures.run(2000, 10);
    Map<String, Double> teacher = new LinkedHashMap<>();
    teacher.put("accuracy", 0.9312);
    teacher.put("f1", 0.9001);
    RunSummary s =
        RunSummary.of("sst2", "cap-movement", run, teacher, Map.of(), locations("s3a://b/run"));
    assertEquals(2000, s.steps());
    assertEquals(0.9, s.finalSparsity(), 1e-12);
    assertEquals(1000.0, s.wallSeconds(), 0);
    double pruned = 0.93 - 0.05 * 0.9; // the fixture's dev accuracy at full sparsity
    assertEquals(Map.of("accuracy", pruned), s.prunedDev());
    assertEquals(
        String.join(
            "\n",
            "cap-prune run summary",
            "  task            sst2",
            "  method          cap-movement",
            "  steps           2000 of 2000",
            "  wall time       00:16:40",
            "  final sparsity  90.00% of encoder Linear weights pruned",
            "",
            "  dev metric         teacher    pruned    change",
            "  accuracy            0.9312    0.8850   -0.0462",
            "  f1                  0.9001         -         -",
            "",
            "  model           s3a://b/run/model",
            "  plots           s3a://b/run/loss.png, s3a://b/run/sparsity.png, s3a://b/run/dev-metric.png",
            "  metrics         s3a://b/run/metrics.jsonl",
            ""),
        s.render());
  }

  @Test
  void stoppedEarlyAndNoEvaluation() {
    List<StepRecord> run = ReportFixtures.run(1000, 10).subList(0, 19); // 190 steps, no dev yet
    String text = RunSummary.of("rte", "movement", run, Map.of(), null, Map.of()).render();
    assertTrue(text.contains("  steps           190 of 1000 (stopped early)\n"), text);
    assertTrue(text.contains("  dev metrics     none (no evaluation ran)\n"), text);
    assertTrue(text.contains("  final sparsity  34.73% of encoder Linear weights pruned\n"), text);
  }

  @Test
  void writtenAsSummaryTxt(@TempDir java.nio.file.Path tmp) throws IOException {
    FileSystem fs = FileSystem.getLocal(new Configuration());
    RunSummary s =
        new RunSummary(
            "mrpc",
            "cap-soft",
            10,
            10,
            3725,
            0.5,
            Map.of("f1", 0.88),
            Map.of("f1", 0.87),
            Map.of("model", "/x/model"));
    String text = s.write(fs, new Path(tmp.toUri()));
    assertEquals(text, Files.readString(tmp.resolve(RunSummary.FILE_NAME)));
    assertTrue(text.contains("  wall time       01:02:05\n"), text);
    assertTrue(text.contains("  f1                  0.8800    0.8700   -0.0100\n"), text);
  }
}
