package io.capprune.core.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.BertInit;
import io.capprune.core.bert.BertInputs;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.structured.StructuredShrink;
import io.capprune.core.structured.UnitMasks;
import io.capprune.core.structured.UnitMasks.Unit;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * Inference latency of a structurally pruned (physically smaller) model against the dense one, on
 * the CPU, batch 1 and batch 32 at sequence length 128: what removing heads and neurons buys
 * without sparse kernels. Not a test (timings depend on the machine and its load):
 *
 * <pre>
 * bin/cap-prune-bench structured-speed [minilm|bert-base] [head %] [neuron %] [iterations] [threads]
 * </pre>
 *
 * The same fraction of heads and neurons is removed from every layer (random units, seeded), so the
 * FFN keeps one {@code intermediate_size}; weights are random (latency does not depend on their
 * values). Before timing, the smaller model's logits are checked against the masked dense model's.
 * Dense and smaller passes alternate, two warm-up pairs first.
 */
public final class StructuredSpeedBenchmark {
  private StructuredSpeedBenchmark() {}

  static BertConfig config(String size) {
    return switch (size) {
      // all-MiniLM-L6-v2's shape, with a 2-label classifier
      case "minilm" ->
          BertConfig.builder().hiddenSize(384).numHiddenLayers(6).intermediateSize(1536).build();
      case "bert-base" -> BertConfig.builder().build();
      default ->
          throw new IllegalArgumentException("model size '" + size + "': minilm or bert-base");
    };
  }

  /** Prunes {@code fraction} of the heads and neurons of every layer, chosen at random (seeded). */
  static UnitMasks evenMasks(BertConfig c, double headFraction, double neuronFraction, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    Map<Integer, List<Integer>> heads = new TreeMap<>();
    Map<Integer, List<Integer>> neurons = new TreeMap<>();
    int h =
        Math.min(c.numAttentionHeads() - 1, (int) Math.round(c.numAttentionHeads() * headFraction));
    int n =
        Math.min(c.intermediateSize() - 1, (int) Math.round(c.intermediateSize() * neuronFraction));
    for (int l = 0; l < c.numHiddenLayers(); l++) {
      heads.put(l, pick(rng, c.numAttentionHeads(), h));
      neurons.put(l, pick(rng, c.intermediateSize(), n));
    }
    return UnitMasks.of(c, heads, neurons);
  }

  private static List<Integer> pick(SplittableRandom rng, int total, int k) {
    int[] idx = new int[total];
    for (int i = 0; i < total; i++) {
      idx[i] = i;
    }
    for (int i = total - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      int t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
    }
    List<Integer> out = new ArrayList<>();
    for (int i = 0; i < k; i++) {
      out.add(idx[i]);
    }
    return out;
  }

  public static void main(String[] args) {
    String size = args.length > 0 ? args[0] : "minilm";
    double headPct = args.length > 1 ? Double.parseDouble(args[1]) : 50;
    double neuronPct = args.length > 2 ? Double.parseDouble(args[2]) : 50;
    int iterations = args.length > 3 ? Integer.parseInt(args[3]) : 10;
    int threads =
        args.length > 4 ? Integer.parseInt(args[4]) : Runtime.getRuntime().availableProcessors();
    DjlRuntime.start(threads);
    BertConfig dense = config(size);
    Map<String, HostTensor> weights = BertInit.init(dense, 42);
    UnitMasks masks = evenMasks(dense, headPct / 100, neuronPct / 100, 7);
    StructuredShrink.Result small =
        StructuredShrink.shrink(dense, masks.maskedWeights(dense, weights), masks);
    long denseParams = weights.values().stream().mapToLong(HostTensor::numel).sum();
    System.out.printf(
        Locale.ROOT,
        "model %s, %d threads, %d iterations (median), seq 128, CPU%n",
        size,
        threads,
        iterations);
    System.out.printf(
        Locale.ROOT,
        "heads kept %d/%d, FFN neurons kept %d/%d%n",
        masks.totalKept(Unit.HEAD),
        masks.total(Unit.HEAD),
        masks.totalKept(Unit.NEURON),
        masks.total(Unit.NEURON));
    System.out.printf(
        Locale.ROOT,
        "parameters: dense %,d, smaller %,d (%.1f%%)%n",
        denseParams,
        small.parameters(),
        100.0 * small.parameters() / denseParams);
    try (NDManager m = NDManager.newBaseManager()) {
      Map<String, NDArray> denseArrays = NDArrays.toNDArrays(m, weights, DataType.FLOAT32);
      Map<String, NDArray> smallArrays = NDArrays.toNDArrays(m, small.weights(), DataType.FLOAT32);
      BertForSequenceClassification denseModel = new BertForSequenceClassification(dense);
      BertForSequenceClassification smallModel = new BertForSequenceClassification(small.config());
      checkEqual(m, denseModel, denseArrays, masks, smallModel, smallArrays);
      for (int batch : new int[] {1, 32}) {
        // Interleaved (dense, smaller, dense, ...): on a shared machine the load drifts, and
        // alternating exposes both models to the same drift; the ratio is the median of the pairs'.
        double[] d = new double[iterations];
        double[] s = new double[iterations];
        double[] ratio = new double[iterations];
        for (int i = -2; i < iterations; i++) {
          double td = time(m, denseModel, denseArrays, batch);
          double ts = time(m, smallModel, smallArrays, batch);
          if (i >= 0) {
            d[i] = td;
            s[i] = ts;
            ratio[i] = td / ts;
          }
        }
        System.out.printf(
            Locale.ROOT,
            "batch %2d: dense %8.1f ms, smaller %8.1f ms (medians), speed-up %.2fx (median of %d pairs; min %.2fx, max %.2fx)%n",
            batch,
            median(d) * 1e3,
            median(s) * 1e3,
            median(ratio),
            iterations,
            Arrays.stream(ratio).min().orElse(0),
            Arrays.stream(ratio).max().orElse(0));
      }
    }
  }

  private static void checkEqual(
      NDManager base,
      BertForSequenceClassification dense,
      Map<String, NDArray> denseArrays,
      UnitMasks masks,
      BertForSequenceClassification small,
      Map<String, NDArray> smallArrays) {
    try (NDManager m = base.newSubManager()) {
      BertInputs in = inputs(m, 2, dense.config().vocabSize());
      float[] a =
          dense
              .forward(denseArrays, in, false, masks.toNDArrays(m, DataType.FLOAT32, false))
              .logits()
              .toFloatArray();
      float[] b = small.forward(smallArrays, in, false, null).logits().toFloatArray();
      double max = 0;
      for (int i = 0; i < a.length; i++) {
        max = Math.max(max, Math.abs(a[i] - b[i]));
      }
      System.out.printf(Locale.ROOT, "max |logit difference| masked vs smaller: %.2e%n", max);
      if (max > 1e-4) {
        throw new IllegalStateException(
            "the smaller model does not compute the masked model: " + max);
      }
    }
  }

  private static BertInputs inputs(NDManager m, int batch, int vocab) {
    SplittableRandom rng = new SplittableRandom(batch);
    int t = 128;
    int[][] ids = new int[batch][t];
    int[][] types = new int[batch][t];
    int[][] mask = new int[batch][t];
    for (int i = 0; i < batch; i++) {
      for (int j = 0; j < t; j++) {
        ids[i][j] = 1 + rng.nextInt(vocab - 1);
        mask[i][j] = 1;
      }
    }
    return BertInputs.of(m, ids, types, mask);
  }

  /** Seconds of one forward pass with the logits read back. */
  private static double time(
      NDManager base, BertForSequenceClassification model, Map<String, NDArray> params, int batch) {
    try (NDManager m = base.newSubManager()) {
      BertInputs in = inputs(m, batch, model.config().vocabSize());
      long t0 = System.nanoTime();
      model.forward(params, in, false, null).logits().toFloatArray();
      return (System.nanoTime() - t0) / 1e9;
    }
  }

  private static double median(double[] v) {
    double[] c = v.clone();
    Arrays.sort(c);
    return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
  }
}
