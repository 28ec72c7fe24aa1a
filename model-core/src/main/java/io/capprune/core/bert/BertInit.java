package io.capprune.core.bert;

import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.checkpoint.BertTensorNames;
import io.capprune.core.tensor.HostTensor;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Random initialisation as Hugging Face's {@code BertPreTrainedModel._init_weights}: Linear weights
 * and embeddings N(0, initializer_range), biases 0, LayerNorm weight 1 and bias 0.
 *
 * <p>Each tensor draws from its own generator seeded by (seed, name), so a tensor's values do not
 * depend on which other tensors are initialised: {@link #fillMissing} gives a checkpoint without a
 * pooler the same pooler as {@link #init} would with the same seed.
 */
public final class BertInit {

  /** Hugging Face's default {@code initializer_range}. */
  public static final double INITIALIZER_RANGE = 0.02;

  private BertInit() {}

  /** Every parameter of BertForSequenceClassification, in Hugging Face's order. */
  public static Map<String, int[]> shapes(BertConfig c) {
    Map<String, int[]> s = new LinkedHashMap<>(BertTensorNames.required(c));
    s.putAll(headShapes(c));
    return s;
  }

  /** A freshly initialised BertForSequenceClassification. */
  public static Map<String, HostTensor> init(BertConfig c, long seed) {
    Map<String, HostTensor> out = new LinkedHashMap<>();
    shapes(c).forEach((name, shape) -> out.put(name, initTensor(name, shape, seed)));
    return out;
  }

  /**
   * Returns {@code params} plus a random pooler and classifier where they are missing (a
   * pre-trained encoder such as MiniLM has no pooler; no pre-trained checkpoint has this task's
   * classifier). The input map is not modified. A head that is half present (weight without bias)
   * or has the wrong shape is an error naming the tensor.
   */
  public static Map<String, HostTensor> fillMissing(
      BertConfig c, Map<String, HostTensor> params, long seed) {
    Map<String, HostTensor> out = new LinkedHashMap<>(params);
    Map<String, int[]> heads = headShapes(c);
    for (String module : new String[] {"pooler.dense.", "classifier."}) {
      String w = module + "weight";
      String b = module + "bias";
      boolean hasW = params.containsKey(w);
      boolean hasB = params.containsKey(b);
      if (hasW != hasB) {
        throw new IllegalArgumentException(
            "parameter '"
                + (hasW ? b : w)
                + "' is missing but '"
                + (hasW ? w : b)
                + "' is present");
      }
      for (String name : new String[] {w, b}) {
        int[] expected = heads.get(name);
        if (hasW) {
          int[] actual = params.get(name).shape();
          if (!Arrays.equals(actual, expected)) {
            throw new IllegalArgumentException(
                "parameter '"
                    + name
                    + "' has shape "
                    + Arrays.toString(actual)
                    + ", expected "
                    + Arrays.toString(expected));
          }
        } else {
          out.put(name, initTensor(name, expected, seed));
        }
      }
    }
    return out;
  }

  private static Map<String, int[]> headShapes(BertConfig c) {
    Map<String, int[]> s = new LinkedHashMap<>(BertTensorNames.pooler(c));
    s.putAll(BertTensorNames.classifier(c));
    return s;
  }

  private static HostTensor initTensor(String name, int[] shape, long seed) {
    HostTensor t = HostTensor.zeros(shape);
    if (name.endsWith("LayerNorm.weight")) {
      Arrays.fill(t.data(), 1f);
    } else if (name.endsWith(".weight")) {
      SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + name.hashCode());
      float[] d = t.data();
      for (int i = 0; i < d.length; i++) {
        d[i] = (float) (rng.nextGaussian() * INITIALIZER_RANGE);
      }
    }
    // Biases and LayerNorm biases stay 0.
    return t;
  }
}
