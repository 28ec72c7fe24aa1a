package io.capprune.core.structured;

import java.io.Serializable;

/**
 * First-order importance of every head and FFN neuron: the sum over batches of |dL/dm|
 * (docs/cap-math.md §3.6). Flat, layer-major: {@code heads[l * H + h]}, {@code neurons[l * I + n]};
 * sums of partial scores (one per partition) add up to the score over the whole training set.
 */
public record ImportanceScores(int layers, double[] heads, double[] neurons, long examples)
    implements Serializable {

  public ImportanceScores {
    if (layers <= 0 || heads.length % layers != 0 || neurons.length % layers != 0) {
      throw new IllegalArgumentException(
          "importance scores: "
              + heads.length
              + " head and "
              + neurons.length
              + " neuron scores do not split into "
              + layers
              + " layers");
    }
  }

  public static ImportanceScores zeros(int layers, int headsPerLayer, int neuronsPerLayer) {
    return new ImportanceScores(
        layers, new double[layers * headsPerLayer], new double[layers * neuronsPerLayer], 0);
  }

  public int headsPerLayer() {
    return heads.length / layers;
  }

  public int neuronsPerLayer() {
    return neurons.length / layers;
  }

  /** The element-wise sum (partitions' partial scores). */
  public ImportanceScores plus(ImportanceScores o) {
    if (o.layers != layers
        || o.heads.length != heads.length
        || o.neurons.length != neurons.length) {
      throw new IllegalArgumentException("importance scores of different models cannot be added");
    }
    double[] h = heads.clone();
    double[] n = neurons.clone();
    for (int i = 0; i < h.length; i++) {
      h[i] += o.heads[i];
    }
    for (int i = 0; i < n.length; i++) {
      n[i] += o.neurons[i];
    }
    return new ImportanceScores(layers, h, n, examples + o.examples);
  }

  /**
   * {@code --normalize_pruning_by_layer}: every layer's head scores divided by their L2 norm, and
   * its neuron scores by theirs, so that layers with larger gradients do not lose all their units.
   */
  public ImportanceScores normalizedPerLayer() {
    return new ImportanceScores(
        layers, normalize(heads, layers), normalize(neurons, layers), examples);
  }

  private static double[] normalize(double[] s, int layers) {
    int per = s.length / layers;
    double[] out = new double[s.length];
    for (int l = 0; l < layers; l++) {
      double sq = 0;
      for (int i = l * per; i < (l + 1) * per; i++) {
        sq += s[i] * s[i];
      }
      double norm = Math.sqrt(sq);
      for (int i = l * per; i < (l + 1) * per; i++) {
        // An all-zero layer (no gradient reached it) stays zero instead of becoming NaN.
        out[i] = norm > 0 ? s[i] / norm : 0;
      }
    }
    return out;
  }
}
