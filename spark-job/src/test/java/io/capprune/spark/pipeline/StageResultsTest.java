package io.capprune.spark.pipeline;

import static io.capprune.spark.pipeline.PipelineFixture.cli;
import static io.capprune.spark.pipeline.PipelineFixture.cliOk;
import static io.capprune.spark.pipeline.PipelineFixture.copyTree;
import static io.capprune.spark.pipeline.PipelineFixture.delete;
import static io.capprune.spark.pipeline.PipelineFixture.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Property;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 23: every stage reports its own result on the generated demo task. {@code finetune} alone
 * leaves the teacher's dev metric in the log, metrics.json and summary.txt; {@code evaluate} scores
 * what the directory holds (the teacher, the last committed snapshot) and says which; {@code
 * compare} shows a run that has only a teacher; {@code evaluate} refuses only a directory with
 * nothing to score.
 */
class StageResultsTest {
  @TempDir static Path tmp;
  static List<String> settings;
  static Path run;
  static PipelineFixture.Result finetune;
  static final List<String> LOG_LINES = new java.util.concurrent.CopyOnWriteArrayList<>();

  @BeforeAll
  static void finetuneAlone() {
    settings = PipelineFixture.settings(tmp.resolve("inputs"), 2);
    run = tmp.resolve("run");
    org.apache.logging.log4j.core.Logger logger =
        (org.apache.logging.log4j.core.Logger) LogManager.getLogger(CapPipeline.class);
    Recorder recorder = new Recorder();
    recorder.start();
    logger.addAppender(recorder);
    try {
      finetune = cliOk("finetune", settings, "--output", run.toString());
    } finally {
      logger.removeAppender(recorder);
    }
  }

  private static double teacherAccuracy() {
    return json(run.resolve("metrics.json")).get("teacher").get("acc").asDouble();
  }

  private static String f4(double v) {
    return String.format(Locale.ROOT, "%.4f", v);
  }

  @Test
  void finetuneWritesTheTeachersDevMetricToMetricsJsonSummaryLogAndOutput() throws IOException {
    JsonNode metrics = json(run.resolve("metrics.json"));
    List<String> keys = new ArrayList<>();
    metrics.fieldNames().forEachRemaining(keys::add);
    assertEquals(List.of("task", "teacher", "scored"), keys, metrics.toString());
    assertEquals("SST2", metrics.get("task").asText());
    assertEquals("teacher/", metrics.get("scored").get("teacher").asText());
    double acc = teacherAccuracy();
    assertTrue(acc > 0 && acc <= 1, metrics.toString());

    String summary = Files.readString(run.resolve("summary.txt"));
    assertTrue(summary.contains("acc") && summary.contains(f4(acc)), summary);
    assertTrue(summary.contains("not pruned yet"), summary);
    assertTrue(summary.contains(run.resolve("teacher").toString()), summary);

    assertTrue(finetune.out().contains("teacher (teacher/): acc=" + f4(acc)), finetune.out());
    assertTrue(
        LOG_LINES.stream()
            .anyMatch(
                l ->
                    l.startsWith("finetune: teacher dev metrics {acc=")
                        && l.contains(String.valueOf(acc))),
        String.join("\n", LOG_LINES));
  }

  @Test
  void evaluateScoresTheTeacherAloneAndSaysSo() {
    double acc = teacherAccuracy();
    PipelineFixture.Result r = cliOk("evaluate", settings, "--output", run.toString());
    assertTrue(r.out().contains("teacher (teacher/): acc=" + f4(acc)), r.out());
    assertFalse(r.out().contains("pruned"), r.out());
    JsonNode metrics = json(run.resolve("metrics.json"));
    assertEquals(acc, metrics.get("teacher").get("acc").asDouble(), 1e-12);
    assertFalse(metrics.has("pruned"), metrics.toString());
  }

  @Test
  void compareShowsARunWithOnlyATeacher() {
    double acc = teacherAccuracy();
    PipelineFixture.Result r = cliOk("compare", List.of(), run.toString());
    assertTrue(r.out().contains("| cap-movement (teacher only) | " + f4(acc) + " | - |"), r.out());
  }

  @Test
  void evaluateScoresTheLastCommittedSnapshotOfAnUnfinishedPrune() throws IOException {
    Path pruned = tmp.resolve("pruned");
    copyTree(run, pruned);
    cliOk("prune", settings, "--output", pruned.toString());
    // As a driver that died in the second epoch leaves it: snapshot 8 committed, nothing after.
    delete(pruned.resolve("snapshots/16"));
    delete(pruned.resolve("_PRUNED"));
    PipelineFixture.Result r = cliOk("evaluate", settings, "--output", pruned.toString());
    JsonNode metrics = json(pruned.resolve("metrics.json"));
    assertEquals(8, metrics.get("pruned_step").asLong());
    assertFalse(metrics.get("pruned_final").asBoolean());
    assertTrue(
        metrics.get("scored").get("pruned").asText().startsWith("last committed snapshot"),
        metrics.toString());
    assertTrue(r.out().contains("teacher (teacher/): acc="), r.out());
    assertTrue(
        r.out()
                .contains(
                    "pruned (last committed snapshot (pruning not finished): snapshot snapshots/")
            && r.out().contains("step 8): acc=" + f4(metrics.get("pruned").get("acc").asDouble())),
        r.out());
  }

  @Test
  void evaluateRefusesOnlyADirectoryWithNothingToScore() {
    Path empty = tmp.resolve("empty");
    PipelineFixture.Result r = cli("evaluate", settings, "--output", empty.toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(
        r.err().contains("holds nothing to score") && r.err().contains(empty.toString()), r.err());
  }

  private static final class Recorder extends AbstractAppender {
    Recorder() {
      super("stage-results-recorder", null, null, true, Property.EMPTY_ARRAY);
    }

    @Override
    public void append(LogEvent event) {
      LOG_LINES.add(event.getMessage().getFormattedMessage());
    }
  }
}
