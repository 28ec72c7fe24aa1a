package io.capprune.spark.train;

import java.io.Serializable;

/**
 * What one partition sends back for one training step: the gradient of its share of the global
 * batch's loss (already scaled so that the partitions' buffers simply add up to the gradient of the
 * batch mean), the weighted loss terms for logging, and the number of examples. Spark's
 * treeAggregate sums these buffers on the executors before one of them reaches the driver.
 *
 * <p>The zero value is empty (no arrays) so that Spark does not ship a model-sized array of zeros
 * with every task.
 */
public final class GradientBuffer implements Serializable {
  private static final long serialVersionUID = 1L;

  private float[] gradient;
  private double[] lossTerms;
  private long examples;
  private double workerSeconds;
  private double workerSecondsTotal;

  public static GradientBuffer empty() {
    return new GradientBuffer();
  }

  /** @param workerSeconds the partition's compute time (forward, backward, gradient copy-out) */
  public static GradientBuffer of(float[] gradient, double[] lossTerms, long examples,
      double workerSeconds) {
    GradientBuffer b = new GradientBuffer();
    b.gradient = gradient;
    b.lossTerms = lossTerms;
    b.examples = examples;
    b.workerSeconds = workerSeconds;
    b.workerSecondsTotal = workerSeconds;
    return b;
  }

  /** Adds {@code other} into this buffer (reusing this buffer's arrays) and returns this. */
  public GradientBuffer add(GradientBuffer other) {
    if (other.gradient == null) {
      return this;
    }
    if (gradient == null) {
      gradient = other.gradient.clone();
      lossTerms = other.lossTerms.clone();
      examples = other.examples;
      workerSeconds = other.workerSeconds;
      workerSecondsTotal = other.workerSecondsTotal;
      return this;
    }
    if (gradient.length != other.gradient.length || lossTerms.length != other.lossTerms.length) {
      throw new IllegalStateException("gradient buffers of different layouts: " + gradient.length
          + " vs " + other.gradient.length);
    }
    float[] g = gradient;
    float[] o = other.gradient;
    for (int i = 0; i < g.length; i++) {
      g[i] += o[i];
    }
    for (int i = 0; i < lossTerms.length; i++) {
      lossTerms[i] += other.lossTerms[i];
    }
    examples += other.examples;
    workerSeconds = Math.max(workerSeconds, other.workerSeconds);
    workerSecondsTotal += other.workerSecondsTotal;
    return this;
  }

  public boolean isEmpty() {
    return gradient == null;
  }

  public float[] gradient() {
    return gradient;
  }

  public double[] lossTerms() {
    return lossTerms;
  }

  public long examples() {
    return examples;
  }

  /** The slowest partition's compute time: the part of a step no exchange optimisation removes. */
  public double workerSeconds() {
    return workerSeconds;
  }

  /**
   * All partitions' compute time added up. Where the tasks of a step cannot run at once (local
   * mode: one DJL worker per JVM, so the partitions take turns), this, not the slowest partition,
   * is the compute part of the job's wall time.
   */
  public double workerSecondsTotal() {
    return workerSecondsTotal;
  }
}
