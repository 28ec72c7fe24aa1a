package io.capprune.spark.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JobConfigTest {

  @Test
  void defaultsAreTheReferenceValues() {
    JobConfig c = JobConfig.load(null, List.of("task=qqp"));
    assertEquals("qqp", c.task());
    assertEquals(PruneMethod.CAP_MOVEMENT, c.prune().method());
    assertEquals(0.03, c.prune().finalThreshold(), 0);
    assertEquals(11000, c.prune().warmupSteps());
    assertEquals(32, c.prune().batchSize());
    assertEquals(3e-5, c.prune().learningRate(), 0);
    assertEquals(1e-2, c.prune().scoreLearningRate(), 0);
    assertEquals(0.1, c.loss().ceWeight(), 0);
    assertEquals(0.9, c.loss().kdWeight(), 0);
    assertEquals(2.0, c.loss().kdTemperature(), 0);
    assertEquals(10.0, c.loss().supervisedWeight(), 0);
    assertEquals(4096, c.loss().extraExamples());
    assertEquals(List.of("prc", "snc", "fic"), c.loss().modules());
  }

  @Test
  void presetSetsTaskSpecificValuesAndOverridesWin() {
    JobConfig mnli = JobConfig.load(null, List.of("cap.task=mnli"));
    assertEquals(List.of("entailment", "neutral", "contradiction"), mnli.labels());
    assertEquals(680, mnli.prune().finalLambda(), 0);
    JobConfig over =
        JobConfig.load(
            null, List.of("task=mnli", "prune.final-lambda=290", "prune.method=cap-soft"));
    assertEquals(290, over.prune().finalLambda(), 0);
    assertEquals(PruneMethod.CAP_SOFT, over.prune().method());
  }

  @Test
  void configFileIsLayeredUnderOverrides(@TempDir Path dir) throws Exception {
    Path f = dir.resolve("job.conf");
    Files.writeString(f, "cap { task = rte, seed = 7, prune.epochs = 4 }\n");
    JobConfig c = JobConfig.load(f.toFile(), List.of("seed=9"));
    assertEquals("rte", c.task());
    assertEquals(9, c.seed());
    assertEquals(4, c.prune().epochs());
  }

  @Test
  void magnitudeScoreInitIsOffByDefaultAndOnlyForMovement() {
    assertEquals(0, JobConfig.load(null, List.of()).prune().scoreInitMagnitude(), 0);
    assertEquals(
        0.5,
        JobConfig.load(null, List.of("prune.method=movement", "prune.score-init-magnitude=0.5"))
            .prune()
            .scoreInitMagnitude(),
        0);
    var soft =
        assertThrows(
            ConfigValidationException.class,
            () ->
                JobConfig.load(
                    null, List.of("prune.method=cap-soft", "prune.score-init-magnitude=0.5")));
    assertEquals("cap.prune.score-init-magnitude", soft.key());
    assertTrue(soft.getMessage().contains("cap-soft"), soft.getMessage());
    var structured =
        assertThrows(
            ConfigValidationException.class,
            () ->
                JobConfig.load(
                    null,
                    List.of("prune.method=cap-structured", "prune.score-init-magnitude=0.5")));
    assertEquals("cap.prune.score-init-magnitude", structured.key());
    assertTrue(structured.getMessage().contains("cap-structured"), structured.getMessage());
    var negative =
        assertThrows(
            ConfigValidationException.class,
            () -> JobConfig.load(null, List.of("prune.score-init-magnitude=-1")));
    assertEquals("cap.prune.score-init-magnitude", negative.key());
  }

  /** The state on the executor needs exactly one partition, refused before Spark starts. */
  @Test
  void updateOnTheExecutorNeedsOnePartition() {
    assertFalse(JobConfig.load(null, List.of()).spark().updateOnExecutor());
    assertTrue(
        JobConfig.load(null, List.of("spark.update-on=executor", "spark.partitions=1"))
            .spark()
            .updateOnExecutor());
    for (String partitions : List.of("0", "2")) {
      var e =
          assertThrows(
              ConfigValidationException.class,
              () ->
                  JobConfig.load(
                      null, List.of("spark.update-on=executor", "spark.partitions=" + partitions)));
      assertEquals("cap.spark.update-on", e.key());
      assertTrue(e.getMessage().contains("cap.spark.partitions = 1"), e.getMessage());
    }
    var bad =
        assertThrows(
            ConfigValidationException.class,
            () -> JobConfig.load(null, List.of("spark.update-on=gpu")));
    assertEquals("cap.spark.update-on", bad.key());
  }

  /**
   * The budgets behind docs/results.md load: a renamed or misspelt key would fail them here, not an
   * hour into a run.
   */
  @Test
  void experimentConfigurationsLoad() throws Exception {
    Path dir = Path.of("../conf/experiments");
    List<Path> files;
    try (var listing = Files.list(dir)) {
      files = listing.filter(f -> f.toString().endsWith(".conf")).sorted().toList();
    }
    assertFalse(files.isEmpty(), "no .conf files in " + dir.toAbsolutePath());
    for (Path f : files) {
      JobConfig c = JobConfig.load(f.toFile(), List.of());
      // Each file is named for its task: sst2-minilm.conf, mrpc-minilm.conf, ...
      String task = f.getFileName().toString().split("-")[0];
      assertEquals(task, c.task(), f.toString());
    }
  }

  @Test
  void badValuesNameTheKey() {
    var e1 =
        assertThrows(
            ConfigValidationException.class,
            () -> JobConfig.load(null, List.of("prune.final-threshold=1.5")));
    assertEquals("cap.prune.final-threshold", e1.key());
    assertTrue(e1.getMessage().contains("(0, 1)"), e1.getMessage());

    var e2 =
        assertThrows(
            ConfigValidationException.class, () -> JobConfig.load(null, List.of("task=squad")));
    assertEquals("cap.task", e2.key());
    assertTrue(e2.getMessage().contains("sst2"), e2.getMessage());

    var e3 =
        assertThrows(
            ConfigValidationException.class,
            () -> JobConfig.load(null, List.of("prune.batch-size=many")));
    assertEquals("cap.prune.batch-size", e3.key());

    var e4 =
        assertThrows(
            ConfigValidationException.class, () -> JobConfig.load(null, List.of("prune.epoch=3")));
    assertEquals("cap.prune.epoch", e4.key());
    assertTrue(e4.getMessage().contains("unknown key"), e4.getMessage());

    var e5 =
        assertThrows(
            ConfigValidationException.class,
            () -> JobConfig.load(null, List.of("prune.method=pruney")));
    assertEquals("cap.prune.method", e5.key());

    var e6 =
        assertThrows(
            ConfigValidationException.class,
            () -> JobConfig.load(new File("/no/such/file.conf"), List.of()));
    assertEquals("--config", e6.key());
  }

  @Test
  void structuredSettingsAreReadAndCheckedWithTheirKeys() {
    JobConfig c =
        JobConfig.load(
            null,
            List.of(
                "prune.method=cap-structured",
                "structured.head-fractions=[0.3, 0.6]",
                "structured.neuron-fractions=[0.2, 0.4]",
                "structured.export-ffn=padded"));
    assertTrue(c.prune().method().structured() && c.prune().method().contrastive());
    assertEquals(List.of(0.3, 0.6), c.structured().headFractions());
    assertTrue(c.structured().padFfn());
    assertEquals(9, JobConfig.load(null, List.of()).structured().headFractions().size());
    assertTrue(
        !JobConfig.load(null, List.of("prune.method=structured")).prune().method().contrastive());

    var e1 =
        assertThrows(
            ConfigValidationException.class,
            () ->
                JobConfig.load(
                    null,
                    List.of(
                        "structured.head-fractions=[0.1, 0.2]",
                        "structured.neuron-fractions=[0.1]")));
    assertEquals("cap.structured.neuron-fractions", e1.key());
    var e2 =
        assertThrows(
            ConfigValidationException.class,
            () ->
                JobConfig.load(
                    null,
                    List.of(
                        "structured.head-fractions=[0.5, 0.2]",
                        "structured.neuron-fractions=[0.1, 0.2]")));
    assertEquals("cap.structured.head-fractions", e2.key());
    assertTrue(e2.getMessage().contains("cumulative"), e2.getMessage());
    var e3 =
        assertThrows(
            ConfigValidationException.class,
            () ->
                JobConfig.load(
                    null,
                    List.of(
                        "structured.neuron-fractions=[0.1, 1.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]")));
    assertEquals("cap.structured.neuron-fractions", e3.key());
    var e4 =
        assertThrows(
            ConfigValidationException.class,
            () -> JobConfig.load(null, List.of("structured.export-ffn=ragged")));
    assertEquals("cap.structured.export-ffn", e4.key());
  }

  @Test
  void secretsAreMaskedInTheRenderedConfig() {
    JobConfig c = JobConfig.load(null, List.of("s3.secret-key=hunter2", "s3.access-key=AKIA123"));
    assertEquals("hunter2", c.s3().secretKey());
    assertFalse(c.rendered().contains("hunter2"), c.rendered());
    assertFalse(c.rendered().contains("AKIA123"), c.rendered());
    assertTrue(c.rendered().contains("****"));
    assertFalse(c.s3().toString().contains("hunter2"));
  }
}
