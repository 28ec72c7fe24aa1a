package io.capprune.core.optim;

/**
 * The LR multiplier of Hugging Face's {@code get_linear_schedule_with_warmup}: linear from 0 to 1
 * over the warmup, then linear to 0 at {@code totalSteps}. Step t is the number of optimizer steps
 * already taken (LambdaLR starts at 0, so the first update uses multiplier 0 when warmup > 0).
 */
public record LinearWarmupDecay(long warmupSteps, long totalSteps) implements java.io.Serializable {

  public LinearWarmupDecay {
    if (warmupSteps < 0) {
      throw new IllegalArgumentException(
          "lr schedule: warmup_steps must be >= 0, got " + warmupSteps);
    }
    if (totalSteps <= 0) {
      throw new IllegalArgumentException("lr schedule: total_steps must be > 0, got " + totalSteps);
    }
  }

  /**
   * Warmup given as a fraction of the total, as {@code TrainingArguments.warmup_ratio}: {@code
   * ceil(totalSteps * ratio)} warmup steps.
   */
  public static LinearWarmupDecay withWarmupRatio(double ratio, long totalSteps) {
    if (!(ratio >= 0 && ratio <= 1)) {
      throw new IllegalArgumentException(
          "lr schedule: warmup_ratio must be in [0, 1], got " + ratio);
    }
    return new LinearWarmupDecay((long) Math.ceil(totalSteps * ratio), totalSteps);
  }

  public double multiplier(long t) {
    if (t < warmupSteps) {
      return (double) t / Math.max(1, warmupSteps);
    }
    return Math.max(0.0, (double) (totalSteps - t) / Math.max(1, totalSteps - warmupSteps));
  }
}
