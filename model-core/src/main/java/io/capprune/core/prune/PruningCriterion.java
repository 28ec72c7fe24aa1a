package io.capprune.core.prune;

/** How the mask of a prunable matrix is chosen (docs/cap-math.md §3.2, 3.3, 3.5). */
public enum PruningCriterion {
  /** Top-k of |W| (baseline, no scores). */
  MAGNITUDE,
  /** Top-k of the learned scores S, straight-through estimator: CAP-m. */
  MOVEMENT,
  /** Keep where sigmoid(S) > tau, with an L1 regulariser on sigmoid(S): CAP-soft. */
  SOFT_MOVEMENT,
  /**
   * Masks set from outside and kept as they are (structured CAP-f: head and neuron masks change
   * only between retraining phases); masked weights get no gradient, as with magnitude.
   */
  FIXED;

  public boolean usesScores() {
    return this == MOVEMENT || this == SOFT_MOVEMENT;
  }

  /** Whether the masks are recomputed from weights or scores after every step. */
  public boolean recomputesMasks() {
    return this != FIXED;
  }
}
