package io.capprune.spark.config;

import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.structured.PruneSequence;
import java.util.Locale;
import java.util.Optional;

/**
 * The checks that need the training-set size or the model's shape, run on the driver before Spark
 * starts (and so before any teacher or pruning step): the sparsity schedule against the steps the
 * data gives, the structured fractions against the model's heads and neurons, the sequence length
 * against the model's positions. Every failure is a {@link ConfigValidationException} whose message
 * names the key and ends with {@code a value that works: <key> = <value>}, a value checked with the
 * same rules.
 */
public final class Preflight {
  /** How each failure message ends; tests parse it back. */
  public static final String WORKS = "a value that works: ";

  private Preflight() {}

  /**
   * @param trainExamples N, the training examples the run reads (after cap.max-train-examples)
   * @param model the student's configuration (the pre-trained model's shape)
   * @param trainsTeacher whether the finetune stage will train a teacher (no cap.teacher and none
   *     in the output directory yet)
   */
  public static void check(
      JobConfig config, long trainExamples, BertConfig model, boolean trainsTeacher) {
    if (trainExamples <= 0) {
      throw new ConfigValidationException(
          "cap.data-dir", config.dataDir() + " gives no training examples");
    }
    checkLabels(config);
    checkRegressionDistillation(config);
    if (config.maxSeqLength() > model.maxPositionEmbeddings()) {
      fail(
          "cap.max-seq-length",
          config.maxSeqLength()
              + " tokens exceed the model's "
              + model.maxPositionEmbeddings()
              + " position embeddings",
          model.maxPositionEmbeddings());
    }
    if (trainsTeacher && config.finetune().epochs() < 1) {
      fail(
          "cap.finetune.epochs",
          "0 epochs train no teacher (or set cap.teacher to a fine-tuned one)",
          3);
    }
    if (config.prune().method().structured()) {
      checkStructured(config.structured(), model);
    } else {
      checkSchedule(config.prune(), trainExamples);
    }
  }

  /** cap.loss.regression-distillation = mse only where there is one output to distil. */
  static void checkRegressionDistillation(JobConfig config) {
    if (config.loss().regressionMse()
        && !io.capprune.core.glue.GlueTask.of(config.task()).isRegression()) {
      fail(
          "cap.loss.regression-distillation",
          "mse applies to regression tasks (stsb) only; task "
              + config.task()
              + " is a classification task and distils by KL",
          "none");
    }
  }

  /** cap.labels: none for a regression task, else at least two distinct names. */
  static void checkLabels(JobConfig config) {
    java.util.List<String> labels = config.labels();
    if (labels.isEmpty()) {
      return;
    }
    io.capprune.core.glue.GlueTask task = io.capprune.core.glue.GlueTask.of(config.task());
    if (task.isRegression()) {
      fail(
          "cap.labels",
          "task " + config.task() + " is a regression task and has no labels, got " + labels,
          "[]");
    }
    if (labels.size() < 2 || new java.util.HashSet<>(labels).size() != labels.size()) {
      fail(
          "cap.labels",
          "needs at least two distinct label names in classifier order, got " + labels,
          "[" + String.join(", ", task.labels()) + "]");
    }
  }

  /** Total optimizer steps of the unstructured prune stage. */
  public static long pruneSteps(JobConfig.PruneSettings p, long trainExamples) {
    return (long) JobConfig.stepsPerEpoch(trainExamples, p.batchSize()) * p.epochs();
  }

  /** The warm-up in steps: cap.prune.warmup-steps, or warmup-fraction of the total when it is 0. */
  public static long warmupSteps(JobConfig.PruneSettings p, long totalSteps) {
    return warmupSteps(p.warmupSteps(), p.warmupFraction(), totalSteps);
  }

  private static long warmupSteps(int steps, double fraction, long totalSteps) {
    return steps > 0 ? steps : Math.max(1, Math.round(fraction * totalSteps));
  }

  /**
   * The sparsity schedule needs steps to prune between its dense start and its final plateau:
   * (initial-warmup + final-warmup) x warm-up < total steps.
   */
  public static void checkSchedule(JobConfig.PruneSettings p, long trainExamples) {
    long total = pruneSteps(p, trainExamples);
    int units = p.initialWarmup() + p.finalWarmup();
    long warmup = warmupSteps(p, total);
    if ((long) units * warmup < total) {
      return;
    }
    String problem =
        "warm-up "
            + warmup
            + " steps x (initial-warmup "
            + p.initialWarmup()
            + " + final-warmup "
            + p.finalWarmup()
            + ") leaves no steps to prune in a run of "
            + total
            + " steps ("
            + trainExamples
            + " examples, batch "
            + p.batchSize()
            + ", "
            + p.epochs()
            + " epochs)";
    long maxWarmup = (total - 1) / units;
    // The first single-key change that passes the same rule.
    if (p.warmupSteps() > 0
        && p.warmupFraction() > 0
        && fits(units, warmupSteps(0, p.warmupFraction(), total), total)) {
      fail(
          "cap.prune.warmup-steps",
          problem
              + "; 0 derives "
              + warmupSteps(0, p.warmupFraction(), total)
              + " steps from warmup-fraction "
              + p.warmupFraction(),
          0);
    }
    if (p.warmupSteps() > 0 && maxWarmup >= 1) {
      fail("cap.prune.warmup-steps", problem, maxWarmup);
    }
    double fraction = Math.floor((double) maxWarmup / total * 1e4) / 1e4;
    if (p.warmupSteps() == 0
        && fraction > 0
        && fits(units, warmupSteps(0, fraction, total), total)) {
      fail("cap.prune.warmup-fraction", problem, fraction);
    }
    int spe = JobConfig.stepsPerEpoch(trainExamples, p.batchSize());
    for (long e = p.epochs() + 1L; e <= p.epochs() + 10_000L; e++) {
      long t = e * spe;
      if (fits(units, warmupSteps(p, t), t)) {
        fail("cap.prune.epochs", problem, e);
      }
    }
    throw new ConfigValidationException("cap.prune.warmup-steps", problem);
  }

  private static boolean fits(int units, long warmup, long total) {
    return (long) units * warmup < total;
  }

  /**
   * Every step of the structured sequence must leave at least one head per layer (the selector
   * protects one): int(heads x fraction) <= heads - layers.
   */
  static void checkStructured(JobConfig.StructuredSettings st, BertConfig model) {
    int layers = model.numHiddenLayers();
    int heads = 0;
    int neurons = 0;
    for (int l = 0; l < layers; l++) {
      heads += model.headsInLayer(l);
      neurons += model.intermediateSizeOf(l);
    }
    PruneSequence seq = new PruneSequence(st.headFractions(), st.neuronFractions());
    int maxHeads = heads - layers;
    for (int s = 0; s < seq.steps(); s++) {
      int h = seq.headsPrunedAfter(s, heads);
      if (h > maxHeads) {
        double largest = Math.floor((double) maxHeads / heads * 1e4) / 1e4;
        fail(
            "cap.structured.head-fractions",
            "step "
                + (s + 1)
                + " prunes int("
                + heads
                + " x "
                + st.headFractions().get(s)
                + ") = "
                + h
                + " heads, but this model ("
                + layers
                + " layers x "
                + model.numAttentionHeads()
                + " heads) can lose at most "
                + maxHeads
                + " (one head per layer is kept)",
            capped(st.headFractions(), largest));
      }
      int n = seq.neuronsPrunedAfter(s, neurons);
      if (n > neurons) {
        fail(
            "cap.structured.neuron-fractions",
            "step " + (s + 1) + " prunes " + n + " of " + neurons + " neurons",
            capped(st.neuronFractions(), 0.9));
      }
    }
  }

  /** The fractions with every value above max lowered to max, as HOCON. */
  private static String capped(java.util.List<Double> fractions, double max) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < fractions.size(); i++) {
      sb.append(i == 0 ? "" : ", ").append(format(Math.min(fractions.get(i), max)));
    }
    return sb.append(']').toString();
  }

  /**
   * The driver's warning when a shard holds fewer rows than loss.extra-examples: each contrastive
   * call then draws at most the shard's rows outside the batch as negatives (RepresentationBank
   * draws them from the example's own shard), fewer than the configured number.
   *
   * @param partitions the number of shards (cap.spark.partitions, or what Spark reports)
   */
  public static Optional<String> negativesWarning(
      JobConfig config, long trainExamples, int partitions) {
    if (!config.prune().method().contrastive()
        || config.loss().modules().isEmpty()
        || config.loss().extraExamples() == 0
        || partitions < 1) {
      return Optional.empty();
    }
    long smallest = trainExamples / partitions;
    int extra = config.loss().extraExamples();
    long wanted = Math.min(extra, trainExamples);
    if (smallest >= wanted) {
      return Optional.empty();
    }
    long drawn = Math.max(0, smallest - rowsOfBatch(config.prune().batchSize(), partitions));
    int most = 0;
    for (int q = partitions - 1; q >= 1 && most == 0; q--) {
      if (q == 1 || trainExamples / q - rowsOfBatch(config.prune().batchSize(), q) >= wanted) {
        most = q;
      }
    }
    return Optional.of(
        String.format(
            Locale.ROOT,
            "cap.loss.extra-examples = %d, but the smallest of the %d"
                + " shards holds %d of the %d training rows. Negatives are drawn from the example's own shard, so"
                + " each contrastive call (PrC, FiC; SnC divides extra-examples by its snapshots) gets at most"
                + " about %d extra negatives per bank instead of %d. %s, or set cap.loss.extra-examples to at most"
                + " %d to run with the number that is used.",
            extra,
            partitions,
            smallest,
            trainExamples,
            drawn,
            wanted,
            most > 1
                ? "To draw "
                    + wanted
                    + ", use at most "
                    + most
                    + " partitions (cap.spark.partitions)"
                : most == 1
                    ? "To draw " + wanted + ", use one partition (cap.spark.partitions = 1)"
                    : "No partitioning of this training set gives " + wanted,
            drawn));
  }

  /** A partition's share of a global batch (the larger one when it does not divide). */
  private static long rowsOfBatch(int batch, int partitions) {
    return (batch + partitions - 1) / partitions;
  }

  private static void fail(String key, String problem, Object value) {
    throw new ConfigValidationException(key, problem + "; " + WORKS + key + " = " + format(value));
  }

  private static String format(Object v) {
    if (v instanceof Double d) {
      return d == Math.rint(d) && Math.abs(d) < 1e15
          ? Long.toString(d.longValue())
          : Double.toString(d);
    }
    return String.valueOf(v);
  }
}
