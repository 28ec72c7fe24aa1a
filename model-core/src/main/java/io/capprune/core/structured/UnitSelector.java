package io.capprune.core.structured;

import io.capprune.core.structured.UnitMasks.Unit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Which units the next step prunes (docs/cap-math.md §3.6, selection): a global ascending sort of
 * the (layer-normalised) scores across layers. Heads: the highest-scoring head still kept in every
 * layer is protected first, so each layer keeps at least one head (an already-pruned unit still
 * gets a score, and protecting it, as the reference may, could leave a layer with no head),
 * already-pruned heads are skipped, the lowest ones are pruned until the cumulative count is
 * reached. Neurons: the same without a per-layer minimum. Ties break by position so the choice is
 * deterministic.
 */
public final class UnitSelector {
  private UnitSelector() {}

  /**
   * @param scores normalised importance
   * @param current the masks before this step (not modified)
   * @param headsPruned heads pruned in total after this step
   * @param neuronsPruned neurons pruned in total after this step
   */
  public static UnitMasks select(
      ImportanceScores scores, UnitMasks current, int headsPruned, int neuronsPruned) {
    if (scores.layers() != current.layers()
        || scores.headsPerLayer() != current.headsPerLayer()
        || scores.neuronsPerLayer() != current.neuronsPerLayer()) {
      throw new IllegalArgumentException("importance scores and masks describe different models");
    }
    UnitMasks next = current.copy();
    int layers = current.layers();
    int hpl = current.headsPerLayer();
    boolean[] protectedHead = new boolean[layers * hpl];
    for (int l = 0; l < layers; l++) {
      int best = -1;
      for (int i = l * hpl; i < (l + 1) * hpl; i++) {
        if (current.isKept(Unit.HEAD, l, i - l * hpl)
            && (best < 0 || scores.heads()[i] > scores.heads()[best])) {
          best = i;
        }
      }
      if (best >= 0) {
        protectedHead[best] = true;
      }
    }
    pruneLowest(next, Unit.HEAD, scores.heads(), hpl, protectedHead, headsPruned);
    pruneLowest(
        next,
        Unit.NEURON,
        scores.neurons(),
        current.neuronsPerLayer(),
        new boolean[scores.neurons().length],
        neuronsPruned);
    return next;
  }

  private static void pruneLowest(
      UnitMasks masks, Unit u, double[] s, int perLayer, boolean[] protectedUnit, int target) {
    int already = masks.total(u) - masks.totalKept(u);
    int toPrune = target - already;
    if (toPrune <= 0) {
      return;
    }
    List<Integer> candidates = new ArrayList<>();
    for (int i = 0; i < s.length; i++) {
      if (!protectedUnit[i] && masks.isKept(u, i / perLayer, i % perLayer)) {
        candidates.add(i);
      }
    }
    candidates.sort(Comparator.<Integer>comparingDouble(i -> s[i]).thenComparingInt(i -> i));
    if (candidates.size() < toPrune) {
      throw new IllegalArgumentException(
          "cannot prune "
              + target
              + " "
              + u.name().toLowerCase()
              + "s in total: only "
              + (already + candidates.size())
              + " may be pruned"
              + (u == Unit.HEAD ? " (one head per layer is kept)" : ""));
    }
    for (int k = 0; k < toPrune; k++) {
      int i = candidates.get(k);
      masks.prune(u, i / perLayer, i % perLayer);
    }
  }
}
