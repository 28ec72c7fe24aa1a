package io.capprune.core.prune;

import io.capprune.core.tensor.HostTensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/** BERT-shaped parameter maps in Hugging Face names with seeded random values, for tests and benchmarks. */
final class ToyBert {

  private ToyBert() {}

  /** Shapes of a BertForSequenceClassification state dict (without the {@code bert.} prefix). */
  static LinkedHashMap<String, int[]> shapes(int layers, int hidden, int intermediate, int vocab, int labels) {
    LinkedHashMap<String, int[]> s = new LinkedHashMap<>();
    s.put("embeddings.word_embeddings.weight", new int[] {vocab, hidden});
    s.put("embeddings.position_embeddings.weight", new int[] {512, hidden});
    s.put("embeddings.token_type_embeddings.weight", new int[] {2, hidden});
    s.put("embeddings.LayerNorm.weight", new int[] {hidden});
    s.put("embeddings.LayerNorm.bias", new int[] {hidden});
    for (int l = 0; l < layers; l++) {
      String p = "encoder.layer." + l + ".";
      for (String q : new String[] {"attention.self.query", "attention.self.key", "attention.self.value",
          "attention.output.dense"}) {
        s.put(p + q + ".weight", new int[] {hidden, hidden});
        s.put(p + q + ".bias", new int[] {hidden});
      }
      s.put(p + "attention.output.LayerNorm.weight", new int[] {hidden});
      s.put(p + "attention.output.LayerNorm.bias", new int[] {hidden});
      s.put(p + "intermediate.dense.weight", new int[] {intermediate, hidden});
      s.put(p + "intermediate.dense.bias", new int[] {intermediate});
      s.put(p + "output.dense.weight", new int[] {hidden, intermediate});
      s.put(p + "output.dense.bias", new int[] {hidden});
      s.put(p + "output.LayerNorm.weight", new int[] {hidden});
      s.put(p + "output.LayerNorm.bias", new int[] {hidden});
    }
    s.put("pooler.dense.weight", new int[] {hidden, hidden});
    s.put("pooler.dense.bias", new int[] {hidden});
    s.put("classifier.weight", new int[] {labels, hidden});
    s.put("classifier.bias", new int[] {labels});
    return s;
  }

  /** Gaussian values with standard deviation {@code std}, one seed per tensor, filled in parallel. */
  static LinkedHashMap<String, HostTensor> random(Map<String, int[]> shapes, double std, long seed) {
    List<String> names = new ArrayList<>(shapes.keySet());
    HostTensor[] out = new HostTensor[names.size()];
    io.capprune.core.optim.ParallelLoops.forEach(names.size(), i -> {
      HostTensor t = HostTensor.zeros(shapes.get(names.get(i)));
      SplittableRandom r = new SplittableRandom(seed * 1_000_003L + i);
      float[] d = t.data();
      for (int j = 0; j < d.length; j++) {
        d[j] = (float) (r.nextGaussian() * std);
      }
      out[i] = t;
    });
    LinkedHashMap<String, HostTensor> m = new LinkedHashMap<>();
    for (int i = 0; i < out.length; i++) {
      m.put(names.get(i), out[i]);
    }
    return m;
  }
}
