package io.capprune.spark.realdata;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.spark.cli.CapPruneMain;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The short real-data check of the real-data suite: the real pre-trained MiniLM, the real SST-2
 * files, a teacher fine-tuned on a subset, then CAP-movement to 50 %, evaluated on the whole SST-2
 * dev set: a short version of what bin/compare-on-glue runs with conf/experiments/sst2-minilm.conf.
 * Scores start from magnitude (score-init-magnitude = 1, as in that file): from 0, a 256-step
 * schedule left movement scores unstable (three runs: 0.7603, 0.625, 0.628; docs/results.md), and a
 * check that passes by luck is no check. With c = 1, seeds 42 and 7 gave 0.7844 and 0.7752.
 */
@Tag("realdata")
class Sst2MiniLmPruningTest {
  private static final Path DATA =
      Path.of(System.getProperty("capprune.sharedData", "../../shared/data"));

  @Test
  void capMovementKeepsSst2AccuracyWellAboveChanceAtHalfSparsity(@TempDir Path out)
      throws Exception {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    long t0 = System.nanoTime();
    int code =
        CapPruneMain.run(
            new String[] {
              "run",
              "--conf",
              "task=sst2",
              "--conf",
              "model=\"" + DATA.resolve("models/all-MiniLM-L6-v2").toAbsolutePath() + "\"",
              "--conf",
              "data-dir=\"" + DATA.resolve("glue/SST-2").toAbsolutePath() + "\"",
              "--output",
              out.resolve("run").toString(),
              "--conf",
              "max-train-examples=1024",
              "--conf",
              "max-seq-length=64",
              "--conf",
              "spark.master=\"local[2]\"",
              "--conf",
              "spark.partitions=2",
              "--conf",
              "finetune.epochs=2",
              "--conf",
              "finetune.learning-rate=1e-4",
              // 96 pruning steps: dense for 32, cubic to 50 % by step 80, then 16 at 50 %.
              "--conf",
              "prune.method=cap-movement",
              "--conf",
              "prune.score-init-magnitude=1.0",
              "--conf",
              "prune.epochs=3",
              "--conf",
              "prune.learning-rate=1e-4",
              "--conf",
              "prune.warmup-steps=16",
              "--conf",
              "prune.initial-warmup=2",
              "--conf",
              "prune.final-warmup=1",
              "--conf",
              "prune.final-threshold=0.5",
              "--conf",
              "log.every-steps=16"
            },
            System.out,
            new PrintStream(err, true));
    double seconds = (System.nanoTime() - t0) / 1e9;
    assertEquals(0, code, err.toString());

    ObjectMapper json = new ObjectMapper();
    JsonNode metrics = json.readTree(Files.readString(out.resolve("run/metrics.json")));
    JsonNode sparsity = json.readTree(Files.readString(out.resolve("run/sparsity.json")));
    double teacher = metrics.at("/teacher/acc").asDouble();
    double pruned = metrics.at("/pruned/acc").asDouble();
    System.out.printf(
        "SST-2 dev (872): teacher acc %.4f, CAP-movement at %.2f%% sparsity acc %.4f, %.0f s%n",
        teacher, 100 * sparsity.get("sparsity").asDouble(), pruned, seconds);
    // Keep 50 %: exactly int(0.5 n) per matrix, so the total is 50 % to rounding.
    assertEquals(0.5, sparsity.get("sparsity").asDouble(), 1e-4);
    // Chance on SST-2 dev is 0.509 (majority class); a model that learned nothing stays near it.
    // Measured with this schedule (seed 42, the default): 0.7844 (teacher 0.7867).
    assertTrue(teacher > 0.70, "teacher dev accuracy " + teacher);
    assertTrue(pruned > 0.70, "pruned dev accuracy " + pruned);
  }
}
