package io.capprune.core.prune;

/** How the mask of a prunable matrix is chosen (cap-reference 3.2, 3.3, 3.5). */
public enum PruningCriterion {
  /** Top-k of |W| (baseline, no scores). */
  MAGNITUDE,
  /** Top-k of the learned scores S, straight-through estimator: CAP-m. */
  MOVEMENT,
  /** Keep where sigmoid(S) > tau, with an L1 regulariser on sigmoid(S): CAP-soft. */
  SOFT_MOVEMENT;

  public boolean usesScores() {
    return this != MAGNITUDE;
  }
}
