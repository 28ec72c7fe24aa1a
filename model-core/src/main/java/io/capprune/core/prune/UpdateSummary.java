package io.capprune.core.prune;

/**
 * What one driver step did.
 *
 * @param step the 0-based step that was applied
 * @param gradNorm global gradient norm before clipping (weights and scores, incl. the regulariser)
 * @param clipCoefficient factor applied to all gradients (1 when not clipped)
 * @param learningRate weights' LR used in this step (after the schedule multiplier)
 * @param scoresLearningRate scores' LR used in this step
 * @param threshold kept fraction or tau of the forward pass this step's gradients came from
 * @param nextThreshold the value the masks were recomputed with for the next forward pass
 * @param lambda soft movement's lambda_t (0 otherwise)
 * @param regularizer R(S) at the scores before the update (0 unless soft movement)
 * @param sparsity the new masks
 */
public record UpdateSummary(
    long step,
    double gradNorm,
    double clipCoefficient,
    double learningRate,
    double scoresLearningRate,
    double threshold,
    double nextThreshold,
    double lambda,
    double regularizer,
    SparsityReport sparsity)
    implements java.io.Serializable {

  /** The regulariser's contribution to the loss, lambda_t * R(S). */
  public double regularizerLoss() {
    return lambda * regularizer;
  }
}
