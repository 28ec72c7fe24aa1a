package io.capprune.core.optim;

/**
 * AdamW hyper-parameters for the two groups the reference uses: weights ({@code learningRate},
 * {@code weightDecay}, none on biases and LayerNorm) and movement scores ({@code
 * scoresLearningRate}, never decayed). Both follow the same LR multiplier. Messages name the
 * configuration key.
 */
public record OptimizerConfig(
    double learningRate,
    double scoresLearningRate,
    double weightDecay,
    double beta1,
    double beta2,
    double epsilon,
    double maxGradNorm,
    LinearWarmupDecay lrSchedule) {

  public OptimizerConfig {
    require(learningRate >= 0 && Double.isFinite(learningRate), "learning_rate", learningRate);
    require(
        scoresLearningRate >= 0 && Double.isFinite(scoresLearningRate),
        "mask_scores_learning_rate",
        scoresLearningRate);
    require(weightDecay >= 0 && Double.isFinite(weightDecay), "weight_decay", weightDecay);
    require(beta1 >= 0 && beta1 < 1, "adam_beta1", beta1);
    require(beta2 >= 0 && beta2 < 1, "adam_beta2", beta2);
    require(epsilon >= 0 && Double.isFinite(epsilon), "adam_epsilon", epsilon);
    require(maxGradNorm > 0, "max_grad_norm", maxGradNorm);
    if (lrSchedule == null) {
      throw new IllegalArgumentException("optimizer: lr schedule must be given");
    }
  }

  /**
   * The unstructured CAP scripts (docs/cap-math.md §5.1): lr 3e-5, scores lr 1e-2, no weight decay,
   * betas 0.9/0.999, eps 1e-8, clip 1.0, linear warmup over {@code warmupSteps} then decay.
   */
  public static OptimizerConfig unstructuredDefaults(long warmupSteps, long totalSteps) {
    return new OptimizerConfig(
        3e-5, 1e-2, 0.0, 0.9, 0.999, 1e-8, 1.0, new LinearWarmupDecay(warmupSteps, totalSteps));
  }

  private static void require(boolean ok, String key, double value) {
    if (!ok) {
      throw new IllegalArgumentException("optimizer: invalid " + key + " = " + value);
    }
  }
}
