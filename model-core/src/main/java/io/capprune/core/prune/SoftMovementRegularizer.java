package io.capprune.core.prune;

import java.util.List;

/**
 * The L1 regulariser of soft movement pruning (docs/cap-math.md §3.3, {@code regularization(model,
 * "l1")} in the reference): {@code R(S) = (1/M) * sum_m mean(sigmoid(S_m))} over the M prunable
 * matrices, so every matrix weighs the same whatever its size. Its coefficient ramps with the
 * threshold: {@code lambda_t = finalLambda * tau_t / tau_final}.
 */
public final class SoftMovementRegularizer {

  private SoftMovementRegularizer() {}

  public static double sigmoid(double x) {
    return 1.0 / (1.0 + Math.exp(-x));
  }

  public static double lambda(double finalLambda, double tau, double tauFinal) {
    if (finalLambda == 0) {
      return 0;
    }
    if (!(tauFinal > 0)) {
      throw new IllegalArgumentException(
          "soft movement: final threshold must be > 0 to scale lambda, got " + tauFinal);
    }
    return finalLambda * tau / tauFinal;
  }

  /** R(S), summed in double. */
  public static double value(List<float[]> scores) {
    if (scores.isEmpty()) {
      return 0;
    }
    double r = 0;
    for (float[] s : scores) {
      r += sumSigmoid(s, 0, s.length) / s.length;
    }
    return r / scores.size();
  }

  /** Sum of sigmoid over a range: the per-chunk piece of {@link #value}. */
  public static double sumSigmoid(float[] s, int from, int to) {
    double sum = 0;
    for (int i = from; i < to; i++) {
      sum += sigmoid(s[i]);
    }
    return sum;
  }

  /**
   * Adds {@code lambda * dR/dS} to {@code grads}: {@code lambda * sigmoid'(s) / (M * numel_m)},
   * with {@code sigmoid' = sigmoid (1 - sigmoid)}.
   */
  public static void addGradient(List<float[]> scores, double lambda, List<float[]> grads) {
    int m = scores.size();
    for (int j = 0; j < m; j++) {
      float[] s = scores.get(j);
      float[] g = grads.get(j);
      if (g.length != s.length) {
        throw new IllegalArgumentException(
            "gradient " + j + " has " + g.length + " elements but its scores have " + s.length);
      }
      double coef = lambda / ((double) m * s.length);
      for (int i = 0; i < s.length; i++) {
        g[i] += (float) (coef * derivative(s[i]));
      }
    }
  }

  /** sigmoid'(x) = sigmoid(x) (1 - sigmoid(x)). */
  public static double derivative(double x) {
    double sig = sigmoid(x);
    return sig * (1 - sig);
  }
}
