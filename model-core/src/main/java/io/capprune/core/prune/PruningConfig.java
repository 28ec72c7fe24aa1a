package io.capprune.core.prune;

/**
 * How prunable matrices are masked.
 *
 * @param schedule the kept fraction (top-k criteria) or sigmoid threshold (soft) over steps
 * @param globalTopK one threshold over all prunable matrices instead of one per matrix
 * @param finalLambda soft movement's regulariser coefficient at the final threshold (0 = off)
 * @param freezeEmbeddings embeddings get no gradient and no update (the unstructured reference)
 * @param scheduleStepOffset added to the optimizer step before the schedule is read: 0 for GLUE, 1
 *     for SQuAD, whose reference counts steps from 1
 * @param magnitudeScoreInit 0: movement scores start at 0, as in the reference. {@code c > 0}: each
 *     score starts at {@code c * |W| / mean(|W|)} of its matrix, so the first masks are magnitude
 *     masks and movement takes over as the scores learn. Not in the reference: on short schedules
 *     the weights move a few percent of their size, and zero-initialised scores then rank weights
 *     without regard to their size (docs/results.md). MOVEMENT only.
 */
public record PruningConfig(
    PruningCriterion criterion,
    SparsitySchedule schedule,
    boolean globalTopK,
    double finalLambda,
    boolean freezeEmbeddings,
    int scheduleStepOffset,
    double magnitudeScoreInit)
    implements java.io.Serializable {

  public PruningConfig {
    if (criterion == null || schedule == null) {
      throw new IllegalArgumentException("pruning: method and schedule must be given");
    }
    boolean fraction = criterion != PruningCriterion.SOFT_MOVEMENT;
    String what = fraction ? "fraction of weights kept" : "sigmoid threshold";
    for (double v : new double[] {schedule.initialValue(), schedule.finalValue()}) {
      if (!(v >= 0 && v <= 1)) {
        throw new IllegalArgumentException(
            "pruning: initial_threshold/final_threshold is a "
                + what
                + " for "
                + criterion
                + " and must be in [0, 1], got "
                + v);
      }
    }
    if (globalTopK && !fraction) {
      throw new IllegalArgumentException(
          "pruning: global_topk applies to top-k methods, not " + criterion);
    }
    if (!(finalLambda >= 0 && Double.isFinite(finalLambda))) {
      throw new IllegalArgumentException("pruning: final_lambda must be >= 0, got " + finalLambda);
    }
    if (finalLambda > 0 && criterion != PruningCriterion.SOFT_MOVEMENT) {
      throw new IllegalArgumentException(
          "pruning: final_lambda applies to SOFT_MOVEMENT only, not " + criterion);
    }
    if (finalLambda > 0 && !(schedule.finalValue() > 0)) {
      throw new IllegalArgumentException(
          "pruning: final_threshold must be > 0 when final_lambda > 0 (lambda scales with tau/final_threshold)");
    }
    if (scheduleStepOffset < 0) {
      throw new IllegalArgumentException(
          "pruning: schedule step offset must be >= 0, got " + scheduleStepOffset);
    }
    checkMagnitudeScoreInit(criterion, magnitudeScoreInit);
  }

  /**
   * The rule for {@code magnitudeScoreInit}, public so that a configuration loader can apply it
   * when it reads the key, before any training starts.
   *
   * @throws IllegalArgumentException if {@code c} is negative or not finite, or positive for a
   *     criterion other than MOVEMENT
   */
  public static void checkMagnitudeScoreInit(PruningCriterion criterion, double c) {
    if (!(c >= 0 && Double.isFinite(c))) {
      throw new IllegalArgumentException("pruning: score-init-magnitude must be >= 0, got " + c);
    }
    if (c > 0 && criterion != PruningCriterion.MOVEMENT) {
      throw new IllegalArgumentException(
          "pruning: score-init-magnitude applies to MOVEMENT (top-k of scores) only, not "
              + criterion);
    }
  }

  /** Scores start at 0 (the reference). */
  public PruningConfig(
      PruningCriterion criterion,
      SparsitySchedule schedule,
      boolean globalTopK,
      double finalLambda,
      boolean freezeEmbeddings,
      int scheduleStepOffset) {
    this(criterion, schedule, globalTopK, finalLambda, freezeEmbeddings, scheduleStepOffset, 0);
  }

  /**
   * Per-matrix top-k or soft threshold, frozen embeddings, steps counted from 0: the GLUE scripts.
   */
  public static PruningConfig of(
      PruningCriterion criterion, SparsitySchedule schedule, double finalLambda) {
    return new PruningConfig(criterion, schedule, false, finalLambda, true, 0);
  }

  public double thresholdAt(long step) {
    return schedule.valueAt(step + scheduleStepOffset);
  }

  /** lambda_t of soft movement at that step; 0 for the other methods. */
  public double lambdaAt(long step) {
    if (criterion != PruningCriterion.SOFT_MOVEMENT) {
      return 0;
    }
    return SoftMovementRegularizer.lambda(finalLambda, thresholdAt(step), schedule.finalValue());
  }
}
