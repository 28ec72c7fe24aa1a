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
    LinearWarmupDecay lrSchedule)
    implements java.io.Serializable {

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

  /** The weights' learning rate at step {@code t} (0-based), after the schedule's multiplier. */
  public double learningRateAt(long t) {
    return learningRate * lrSchedule.multiplier(t);
  }

  /** The scores' learning rate at step {@code t}, after the same multiplier. */
  public double scoresLearningRateAt(long t) {
    return scoresLearningRate * lrSchedule.multiplier(t);
  }

  /**
   * AdamW's coefficients for the weights at step {@code t} (0-based): the scheduled learning rate,
   * with this configuration's weight decay when {@code decayed} (biases and LayerNorm are not).
   */
  public AdamW.StepCoefficients weightCoefficients(long t, boolean decayed) {
    return AdamW.coefficients(
        learningRateAt(t), beta1, beta2, epsilon, decayed ? weightDecay : 0, t + 1);
  }

  /** AdamW's coefficients for the movement scores at step {@code t}: their own rate, no decay. */
  public AdamW.StepCoefficients scoreCoefficients(long t) {
    return AdamW.coefficients(scoresLearningRateAt(t), beta1, beta2, epsilon, 0, t + 1);
  }

  private static void require(boolean ok, String key, double value) {
    if (!ok) {
      throw new IllegalArgumentException("optimizer: invalid " + key + " = " + value);
    }
  }
}
