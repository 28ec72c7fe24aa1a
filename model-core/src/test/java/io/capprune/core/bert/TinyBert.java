package io.capprune.core.bert;

import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.tensor.HostTensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Small generated models for tests that must run without ../shared/data. */
final class TinyBert {

  private TinyBert() {}

  static BertConfig config(int layers) {
    // vocab 100, hidden 32, 4 heads, FFN 64, 3 labels; dropout 0.1 as BERT.
    return new BertConfig("bert", 100, 32, layers, 4, 64, "gelu", 0.1f, 0.1f, 40, 2, 1e-12f, 3,
        List.of());
  }

  /**
   * Parameters with every entry random (biases, LayerNorm too) and larger than HF's 0.02 init, so
   * that a wrong bias, transposition or non-linearity changes the output visibly.
   */
  static Map<String, HostTensor> randomParams(BertConfig c, long seed) {
    Random rng = new Random(seed);
    Map<String, HostTensor> out = new LinkedHashMap<>();
    BertInit.shapes(c).forEach((name, shape) -> {
      HostTensor t = HostTensor.zeros(shape);
      float[] d = t.data();
      boolean lnWeight = name.endsWith("LayerNorm.weight");
      for (int i = 0; i < d.length; i++) {
        double g = rng.nextGaussian();
        d[i] = (float) (lnWeight ? 1 + 0.2 * g : 0.3 * g);
      }
      out.put(name, t);
    });
    return out;
  }
}
