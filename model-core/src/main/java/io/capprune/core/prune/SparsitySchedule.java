package io.capprune.core.prune;

/**
 * The cubic sparsity schedule of movement pruning (docs/cap-math.md §3.4, {@code
 * schedule_threshold} in the reference): constant {@code initialValue} for the first {@code
 * initialWarmup * warmupSteps} steps, a cubic ramp, then constant {@code finalValue} for the last
 * {@code finalWarmup * warmupSteps} steps. The value is the fraction of weights kept (top-k,
 * magnitude) or the sigmoid threshold tau (soft movement).
 *
 * @param warmupSteps w, the LR warmup length, which is also the unit of the sparsity warmups
 * @param initialWarmup iw, multiples of w held at the initial value
 * @param finalWarmup fw, multiples of w held at the final value
 * @param totalSteps T, total optimisation steps
 */
public record SparsitySchedule(
    long warmupSteps,
    int initialWarmup,
    int finalWarmup,
    long totalSteps,
    double initialValue,
    double finalValue)
    implements java.io.Serializable {

  public SparsitySchedule {
    require(warmupSteps >= 0, "warmup_steps must be >= 0, got " + warmupSteps);
    require(initialWarmup >= 0, "initial_warmup must be >= 0, got " + initialWarmup);
    require(finalWarmup >= 0, "final_warmup must be >= 0, got " + finalWarmup);
    require(
        totalSteps > (long) (initialWarmup + finalWarmup) * warmupSteps,
        "total_steps "
            + totalSteps
            + " must exceed (initial_warmup + final_warmup) * warmup_steps = "
            + (long) (initialWarmup + finalWarmup) * warmupSteps);
    require(Double.isFinite(initialValue), "initial threshold must be finite, got " + initialValue);
    require(Double.isFinite(finalValue), "final threshold must be finite, got " + finalValue);
  }

  /**
   * A schedule that stays at {@code value}: dense training (value 1 for top-k) or fixed sparsity.
   */
  public static SparsitySchedule constant(double value, long totalSteps) {
    return new SparsitySchedule(0, 0, 0, Math.max(1, totalSteps), value, value);
  }

  /** The value at 0-based step {@code t} (the reference passes 1-based steps for SQuAD). */
  public double valueAt(long t) {
    long dense = (long) initialWarmup * warmupSteps;
    if (t <= dense) {
      return initialValue;
    }
    if (t > totalSteps - (long) finalWarmup * warmupSteps) {
      return finalValue;
    }
    double ramp = totalSteps - (long) (initialWarmup + finalWarmup) * warmupSteps;
    double mul = 1.0 - (t - dense) / ramp;
    return finalValue + (initialValue - finalValue) * (mul * mul * mul);
  }

  private static void require(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException("sparsity schedule: " + message);
    }
  }
}
