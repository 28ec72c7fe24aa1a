package io.capprune.spark.train;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The global batch of every step: step t of an epoch takes the t-th slice of a seeded permutation
 * of the training set for that epoch. The driver chooses it and each partition takes the rows of it
 * that it holds, so the same rows form the same batch whatever the partitioning, and a resumed run
 * sees the batches the uninterrupted run would have seen.
 */
final class GlobalBatches {
  private final DistributedTrainer.Plan plan;
  private long[] permutation;
  private int permutationEpoch = -1;

  GlobalBatches(DistributedTrainer.Plan plan) {
    this.plan = plan;
  }

  /** The global indices of step {@code step}'s batch. */
  long[] of(long step) {
    int epoch = plan.epochOf(step);
    if (permutationEpoch != epoch) {
      permutation = permutation(plan.trainingSetSize(), plan.seed(), epoch);
      permutationEpoch = epoch;
    }
    int from = (int) (step % plan.stepsPerEpoch()) * plan.batchSize();
    int to = (int) Math.min(plan.trainingSetSize(), from + (long) plan.batchSize());
    return Arrays.copyOfRange(permutation, from, to);
  }

  /** Global indices [0, n) in the order of a seeded shuffle for this epoch. */
  static long[] permutation(long n, long seed, int epoch) {
    long[] p = new long[Math.toIntExact(n)];
    for (int i = 0; i < p.length; i++) {
      p[i] = i;
    }
    SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + epoch);
    for (int i = p.length - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      long t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}
