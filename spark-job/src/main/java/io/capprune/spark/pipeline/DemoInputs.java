package io.capprune.spark.pipeline;

import io.capprune.core.bert.BertInit;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.checkpoint.CheckpointStore;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.glue.SyntheticGlueTask;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;

/**
 * The embedded default (docs/decisions.md decision 10): a small BERT and a small SST-2-format task
 * that the project generates itself, so the whole pipeline runs with no download. The "pre-trained"
 * model is a seeded random initialisation (there is no pre-training here); the task's label is
 * carried by sentiment words, so a model that learns scores far above chance.
 */
public final class DemoInputs {
  private DemoInputs() {}

  /** 2 layers, hidden 64, 4 heads, FFN 256: about 0.1 M parameters. */
  public static BertConfig modelConfig() {
    return BertConfig.builder()
        .vocabSize(SyntheticGlueTask.vocabulary().size())
        .hiddenSize(64)
        .numHiddenLayers(2)
        .numAttentionHeads(4)
        .intermediateSize(256)
        .maxPositionEmbeddings(64)
        .build();
  }

  /**
   * Writes {@code <dir>/pretrained} and {@code <dir>/data} unless they exist (they are
   * deterministic, so an existing copy is the same).
   */
  public static void writeTo(Path dir, long seed) {
    Path model = dir.resolve("pretrained");
    Path data = dir.resolve("data");
    try {
      if (!Files.exists(model.resolve(CheckpointStore.CONFIG))) {
        BertConfig c = modelConfig();
        Map<String, io.capprune.core.tensor.HostTensor> weights = BertInit.init(c, seed);
        weights.keySet().removeIf(n -> n.startsWith("classifier."));
        CheckpointStore.write(
            new HfCheckpoint("demo", c, weights, SyntheticGlueTask.vocabulary()),
            model.toString(),
            new Configuration(),
            false);
      }
      if (!Files.exists(data.resolve("dev.tsv"))) {
        Files.createDirectories(data);
        new SyntheticGlueTask(2000, 400, seed, 0.05).writeTo(data);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot write the demo inputs to " + dir + ": " + e.getMessage(), e);
    }
  }

  /** The demo's settings: small enough for minutes on 2 CPU cores, same code as a real run. */
  public static List<String> overrides(Path dir) {
    return List.of(
        "task=sst2",
        "model=\"" + dir.resolve("pretrained") + "\"",
        "data-dir=\"" + dir.resolve("data") + "\"",
        "output=\"" + dir.resolve("run") + "\"",
        "max-seq-length=32",
        "spark.master=\"local[2]\"",
        "spark.partitions=2",
        "finetune.epochs=3",
        "finetune.learning-rate=1e-3",
        "finetune.weight-decay=0.0",
        "prune.method=cap-movement",
        "prune.epochs=4",
        "prune.learning-rate=5e-4",
        "prune.warmup-steps=0",
        "prune.warmup-fraction=0.1",
        "prune.initial-warmup=1",
        "prune.final-warmup=1",
        "prune.final-threshold=0.1",
        "prune.freeze-embeddings=false",
        "loss.extra-examples=256",
        // Used by --conf prune.method=cap-structured / structured: 2 layers x 4 heads can lose at
        // most 6 of 8 heads (one per layer is kept), so 75 % at most, not the default 90 %.
        "structured.head-fractions=[0.25, 0.5, 0.75]",
        "structured.neuron-fractions=[0.25, 0.5, 0.75]",
        "log.every-steps=25");
  }
}
