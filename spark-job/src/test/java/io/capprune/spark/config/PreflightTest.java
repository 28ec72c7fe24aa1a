package io.capprune.spark.config;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.glue.GlueTask;
import io.capprune.core.testing.TestModels;
import io.capprune.spark.data.GlueFiles;
import io.capprune.spark.io.Storage;
import io.capprune.spark.pipeline.DemoInputs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;

/**
 * The checks that need the data's size and the model's shape (issue 20 item 1): every task preset
 * with every method passes them on the real GLUE train-set sizes, a value that cannot work fails
 * naming its key and a value that does work (checked by applying it), and the demo's inputs fit
 * every method.
 */
class PreflightTest {
  /** GLUE train.tsv rows (without header) of the original GLUE distribution. */
  static final Map<String, Long> GLUE_TRAIN =
      Map.of(
          "cola", 8_551L, "sst2", 67_349L, "mrpc", 3_668L, "stsb", 5_749L, "qqp", 363_846L, "mnli",
          392_702L, "qnli", 104_743L, "rte", 2_490L, "wnli", 635L);

  static final BertConfig BERT_BASE = BertConfig.builder().build();
  static final BertConfig MINILM_L6 = TestModels.miniLmShape();

  private static final Path CONF_TASKS = Paths.get("..", "conf", "tasks");
  private static final Pattern WORKS =
      Pattern.compile(Pattern.quote(Preflight.WORKS) + "(\\S+) = (.+)$");

  static List<String> presetTasks() throws IOException {
    try (Stream<Path> files = Files.list(CONF_TASKS)) {
      return files
          .map(p -> p.getFileName().toString())
          .filter(n -> n.endsWith(".conf"))
          .map(n -> n.substring(0, n.length() - ".conf".length()))
          .sorted()
          .toList();
    }
  }

  @Test
  void everyPresetRunsWithEveryMethodOnTheRealTrainSizes() throws IOException {
    List<String> tasks = presetTasks();
    assertEquals(
        new TreeSet<>(JobConfig.TASKS), new TreeSet<>(tasks), "a preset per task in " + CONF_TASKS);
    assertEquals(new TreeSet<>(JobConfig.TASKS), new TreeSet<>(GLUE_TRAIN.keySet()));
    List<String> failures = new ArrayList<>();
    for (String task : tasks) {
      for (PruneMethod method : PruneMethod.values()) {
        JobConfig c =
            JobConfig.load(null, List.of("task=" + task, "prune.method=" + method.configName()));
        for (BertConfig model : List.of(BERT_BASE, MINILM_L6)) {
          try {
            Preflight.check(c, GLUE_TRAIN.get(task), model, true);
          } catch (ConfigValidationException e) {
            failures.add(
                task
                    + " / "
                    + method.configName()
                    + " / "
                    + model.numHiddenLayers()
                    + " layers: "
                    + e.getMessage());
          }
        }
      }
    }
    assertEquals(List.of(), failures);
  }

  /** The sizes above are the shared GLUE files' when they are next to the clone. */
  @Test
  void hardCodedSizesAreTheSharedFiles() {
    Path glue = Paths.get(System.getProperty("capprune.sharedData", "../../shared/data"), "glue");
    assumeTrue(Files.isDirectory(glue), "no shared GLUE data at " + glue.toAbsolutePath());
    Storage storage = new Storage(new Configuration());
    int counted = 0;
    for (String task : JobConfig.TASKS) {
      GlueTask t = GlueTask.of(task);
      Path dir = glue.resolve(t.dirName());
      if (!Files.isRegularFile(dir.resolve("train.tsv"))) {
        continue;
      }
      long n =
          GlueFiles.read(
                  storage, dir.toAbsolutePath().toString(), t, t.trainSplit(), List.of(), false, 0)
              .size();
      assertEquals(GLUE_TRAIN.get(task), n, task + " train.tsv");
      for (PruneMethod method : PruneMethod.values()) {
        JobConfig c =
            JobConfig.load(null, List.of("task=" + task, "prune.method=" + method.configName()));
        assertDoesNotThrow(
            () -> Preflight.check(c, n, MINILM_L6, true), task + " " + method.configName());
      }
      counted++;
    }
    assertTrue(counted >= 1, "no train.tsv found under " + glue);
  }

  /**
   * The check that stopped `run --conf task=stsb` after fine-tuning, with the preset's old value.
   */
  @Test
  void stsbWithTheOldWarmupFailsNamingTheKeyAndAWorkingValue() {
    List<String> settings = new ArrayList<>(List.of("task=stsb", "prune.warmup-steps=11000"));
    ConfigValidationException e =
        assertThrows(
            ConfigValidationException.class,
            () ->
                Preflight.check(
                    JobConfig.load(null, settings), GLUE_TRAIN.get("stsb"), BERT_BASE, true));
    assertEquals("cap.prune.warmup-steps", e.key());
    assertTrue(e.getMessage().contains("1800 steps"), e.getMessage());
    assertWorkingValue(settings, GLUE_TRAIN.get("stsb"), BERT_BASE, e);
  }

  /** Values that cannot work fail with their key and a value that, applied alone, passes. */
  @Test
  void everyFailureNamesItsKeyAndAValueThatWorks() {
    BertConfig demo = DemoInputs.modelConfig();
    record Case(List<String> settings, long n, BertConfig model, String key) {}
    List<Case> cases =
        List.of(
            new Case(
                List.of("task=rte", "prune.warmup-steps=11000"),
                2_490,
                BERT_BASE,
                "cap.prune.warmup-steps"),
            new Case(
                List.of("task=rte", "prune.warmup-steps=11000", "prune.warmup-fraction=0.3"),
                2_490,
                BERT_BASE,
                "cap.prune.warmup-steps"),
            new Case(
                List.of("task=rte", "prune.warmup-fraction=0.25"),
                2_490,
                BERT_BASE,
                "cap.prune.warmup-fraction"),
            new Case(
                List.of(
                    "task=rte",
                    "prune.epochs=1",
                    "prune.warmup-steps=0",
                    "prune.warmup-fraction=0.05"),
                64,
                BERT_BASE,
                "cap.prune.epochs"),
            new Case(
                List.of("task=mnli", "max-train-examples=10000"),
                10_000,
                BERT_BASE,
                "cap.prune.warmup-steps"),
            new Case(
                List.of("prune.method=cap-structured", "max-seq-length=32"),
                2_000,
                demo,
                "cap.structured.head-fractions"),
            new Case(
                List.of(
                    "prune.method=structured",
                    "max-seq-length=32",
                    "structured.head-fractions=[0.5, 0.9]",
                    "structured.neuron-fractions=[0.5, 0.9]"),
                2_000,
                demo,
                "cap.structured.head-fractions"),
            new Case(
                List.of(
                    "prune.method=cap-structured",
                    "structured.head-fractions=[0.93]",
                    "structured.neuron-fractions=[0.5]"),
                67_349,
                BERT_BASE,
                "cap.structured.head-fractions"),
            new Case(List.of("task=sst2", "max-seq-length=128"), 2_000, demo, "cap.max-seq-length"),
            new Case(
                List.of("task=sst2", "finetune.epochs=0"), 2_000, BERT_BASE, "cap.finetune.epochs"),
            new Case(List.of("task=stsb", "labels=[low, high]"), 5_749, BERT_BASE, "cap.labels"),
            new Case(
                List.of("task=rte", "labels=[entailment, entailment]"),
                2_490,
                BERT_BASE,
                "cap.labels"),
            new Case(List.of("task=rte", "labels=[entailment]"), 2_490, BERT_BASE, "cap.labels"),
            new Case(
                List.of("task=sst2", "loss.regression-distillation=mse"),
                67_349,
                BERT_BASE,
                "cap.loss.regression-distillation"));
    for (Case c : cases) {
      ConfigValidationException e =
          assertThrows(
              ConfigValidationException.class,
              () -> Preflight.check(JobConfig.load(null, c.settings()), c.n(), c.model(), true),
              c.settings()::toString);
      assertEquals(c.key(), e.key(), e.getMessage());
      assertWorkingValue(c.settings(), c.n(), c.model(), e);
    }
  }

  private static void assertWorkingValue(
      List<String> settings, long n, BertConfig model, ConfigValidationException e) {
    Matcher m = WORKS.matcher(e.getMessage());
    assertTrue(m.find(), "no working value in: " + e.getMessage());
    assertEquals(e.key(), m.group(1), e.getMessage());
    List<String> fixed = new ArrayList<>(settings);
    fixed.add(m.group(1) + "=" + m.group(2));
    assertDoesNotThrow(
        () -> Preflight.check(JobConfig.load(null, fixed), n, model, true),
        () ->
            "the suggested "
                + m.group(1)
                + " = "
                + m.group(2)
                + " does not work ("
                + e.getMessage()
                + ")");
  }

  @Test
  void finetuneEpochsZeroIsFineWhenNoTeacherIsTrained() {
    assertDoesNotThrow(
        () ->
            Preflight.check(
                JobConfig.load(null, List.of("finetune.epochs=0")), 67_349, BERT_BASE, false));
  }

  /**
   * `demo --conf prune.method=...`: the demo's settings fit its 2-layer, 4-head model for every
   * method.
   */
  @Test
  void theDemoFitsEveryMethod() {
    Path inputs = Paths.get("target", "demo-inputs-not-written");
    for (PruneMethod method : PruneMethod.values()) {
      List<String> settings = new ArrayList<>(DemoInputs.overrides(inputs));
      settings.add("prune.method=" + method.configName());
      JobConfig c = JobConfig.load(null, settings);
      assertDoesNotThrow(
          () -> Preflight.check(c, 2_000, DemoInputs.modelConfig(), true), method.configName());
    }
  }

  @Test
  void negativesCappedByTheShardSizeAreReported() {
    JobConfig cap = JobConfig.load(null, List.of("loss.extra-examples=4096"));
    Optional<String> w = Preflight.negativesWarning(cap, 10_000, 4);
    assertTrue(w.isPresent());
    assertTrue(
        w.get().contains("cap.loss.extra-examples = 4096") && w.get().contains("2500"), w.get());
    assertTrue(w.get().contains("at most 2 partitions"), w.get());
    // a single shard draws as the reference does (capped only at N); large shards are not capped
    assertEquals(Optional.empty(), Preflight.negativesWarning(cap, 3_000, 1));
    assertEquals(Optional.empty(), Preflight.negativesWarning(cap, 67_349, 8));
    // no contrastive terms: no negatives
    assertEquals(
        Optional.empty(),
        Preflight.negativesWarning(
            JobConfig.load(null, List.of("prune.method=movement")), 10_000, 4));
    assertEquals(
        Optional.empty(),
        Preflight.negativesWarning(JobConfig.load(null, List.of("loss.modules=[]")), 10_000, 4));
    // the demo (2,000 rows, 2 partitions, 256 negatives) is not capped
    assertEquals(
        Optional.empty(),
        Preflight.negativesWarning(
            JobConfig.load(null, DemoInputs.overrides(Paths.get("x"))), 2_000, 2));
  }

  /** Issue 20 item 2: CAP-f's reference values when a structured method is chosen; set keys win. */
  @Test
  void structuredMethodsGetTheReferenceCapFDefaults() {
    for (String method : List.of("cap-structured", "structured")) {
      JobConfig c = JobConfig.load(null, List.of("prune.method=" + method));
      assertEquals(16, c.prune().batchSize(), method);
      assertEquals(2e-5, c.prune().learningRate(), 0, method);
      assertEquals(0.01, c.prune().weightDecay(), 0, method);
      assertEquals(0.3, c.loss().unsupervisedWeight(), 0, method);
      assertEquals(3.0, c.loss().supervisedWeight(), 0, method);
      assertEquals(1.0, c.loss().kdTemperature(), 0, method);
      assertEquals("pooler", c.loss().representation(), method);
      assertEquals(0.1, c.loss().ceWeight(), 0, method);
      assertEquals(0.9, c.loss().kdWeight(), 0, method);
      assertTrue(
          c.rendered().matches("(?s).*unsupervised-weight\\W+0\\.3\\b.*"),
          "the printed configuration shows the values used:\n" + c.rendered());
    }
    JobConfig unstructured = JobConfig.load(null, List.of("prune.method=cap-movement"));
    assertEquals(32, unstructured.prune().batchSize());
    assertEquals(3e-5, unstructured.prune().learningRate(), 0);
    assertEquals(0.0, unstructured.prune().weightDecay(), 0);
    assertEquals(0.1, unstructured.loss().unsupervisedWeight(), 0);
    assertEquals(10.0, unstructured.loss().supervisedWeight(), 0);
    assertEquals(2.0, unstructured.loss().kdTemperature(), 0);

    JobConfig explicit =
        JobConfig.load(
            null,
            List.of(
                "prune.method=cap-structured",
                "prune.batch-size=8",
                "loss.kd-temperature=2",
                "loss.representation=mean"));
    assertEquals(8, explicit.prune().batchSize());
    assertEquals(2.0, explicit.loss().kdTemperature(), 0);
    assertEquals("mean", explicit.loss().representation());
    assertEquals(2e-5, explicit.prune().learningRate(), 0);
    // the task preset's choice stays: STS-B has no classes, so no supervised term
    assertEquals(
        0.0,
        JobConfig.load(null, List.of("task=stsb", "prune.method=cap-structured"))
            .loss()
            .supervisedWeight(),
        0);
  }

  @Test
  void structuredDefaultsFromAConfigFileAndItsKeysWin(@org.junit.jupiter.api.io.TempDir Path dir)
      throws IOException {
    Path f = dir.resolve("job.conf");
    Files.writeString(f, "cap { prune { method = structured, learning-rate = 1e-4 } }\n");
    JobConfig c = JobConfig.load(f.toFile(), List.of());
    assertEquals(1e-4, c.prune().learningRate(), 0);
    assertEquals(16, c.prune().batchSize());
    assertEquals(0.3, c.loss().unsupervisedWeight(), 0);
  }

  @Test
  void structuredDefaultsAreNotKeysOfTheJob() {
    ConfigValidationException e =
        assertThrows(
            ConfigValidationException.class,
            () ->
                JobConfig.load(null, List.of("structured-method-defaults.cap.prune.batch-size=4")));
    assertTrue(e.getMessage().contains("unknown key"), e.getMessage());
  }
}
