package io.capprune.core.structured;

import java.io.Serializable;
import java.util.List;

/**
 * CAP-f's cumulative pruning sequence (docs/cap-math.md §3.6): after step s, {@code floor(total *
 * fraction_s)} heads and neurons are pruned. The default is 0.1, 0.2, ..., 0.9 for both.
 *
 * @param headFractions cumulative fraction of all heads pruned after each step, non-decreasing
 * @param neuronFractions same for FFN neurons; same length as headFractions
 */
public record PruneSequence(List<Double> headFractions, List<Double> neuronFractions)
    implements Serializable {

  public PruneSequence {
    headFractions = List.copyOf(headFractions);
    neuronFractions = List.copyOf(neuronFractions);
    if (headFractions.isEmpty() || headFractions.size() != neuronFractions.size()) {
      throw new IllegalArgumentException(
          "prune sequence: "
              + headFractions.size()
              + " head fractions and "
              + neuronFractions.size()
              + " neuron fractions; need the same, positive number of steps");
    }
    check(headFractions, "head");
    check(neuronFractions, "neuron");
  }

  private static void check(List<Double> f, String what) {
    double prev = 0;
    for (double v : f) {
      if (!(v >= 0 && v < 1)) {
        throw new IllegalArgumentException(
            "prune sequence: " + what + " fraction " + v + " is not in [0, 1)");
      }
      if (v < prev) {
        throw new IllegalArgumentException(
            "prune sequence: "
                + what
                + " fractions must be cumulative"
                + " (non-decreasing), got "
                + f);
      }
      prev = v;
    }
  }

  /** 10 %, 20 %, ..., 90 % of heads and of neurons: the reference's PRUNE_SEQUENCE. */
  public static PruneSequence reference() {
    List<Double> f = List.of(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9);
    return new PruneSequence(f, f);
  }

  public int steps() {
    return headFractions.size();
  }

  /** Heads pruned in total after step {@code step} (0-based): {@code int(total * p)}. */
  public int headsPrunedAfter(int step, int totalHeads) {
    return (int) Math.floor(totalHeads * headFractions.get(step) + 1e-9);
  }

  public int neuronsPrunedAfter(int step, int totalNeurons) {
    return (int) Math.floor(totalNeurons * neuronFractions.get(step) + 1e-9);
  }
}
