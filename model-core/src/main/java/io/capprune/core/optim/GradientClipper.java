package io.capprune.core.optim;

import java.util.Collection;

/**
 * Global L2-norm clipping as {@code torch.nn.utils.clip_grad_norm_} (torch 1.8): the norm over all
 * gradients together; if {@code maxNorm / (norm + 1e-6) < 1} every gradient is scaled by that
 * coefficient. Norms are summed in double.
 */
public final class GradientClipper {

  private GradientClipper() {}

  public static double sumOfSquares(float[] g, int from, int to) {
    // Four accumulators: Java may not reorder a floating-point sum, so this is how it pipelines.
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = from;
    for (; i + 3 < to; i += 4) {
      s0 += (double) g[i] * g[i];
      s1 += (double) g[i + 1] * g[i + 1];
      s2 += (double) g[i + 2] * g[i + 2];
      s3 += (double) g[i + 3] * g[i + 3];
    }
    for (; i < to; i++) {
      s0 += (double) g[i] * g[i];
    }
    return (s0 + s1) + (s2 + s3);
  }

  public static double globalNorm(Collection<float[]> grads) {
    double s = 0;
    for (float[] g : grads) {
      s += sumOfSquares(g, 0, g.length);
    }
    return Math.sqrt(s);
  }

  /**
   * The factor gradients are multiplied by: 1 when no clipping happens (or maxNorm is infinite).
   */
  public static double coefficient(double norm, double maxNorm) {
    double c = maxNorm / (norm + 1e-6);
    return c < 1 ? c : 1.0;
  }

  /** Clips in place and returns the norm before clipping. */
  public static double clip(Collection<float[]> grads, double maxNorm) {
    if (!(maxNorm > 0)) {
      throw new IllegalArgumentException("max_grad_norm must be > 0, got " + maxNorm);
    }
    double norm = globalNorm(grads);
    double c = coefficient(norm, maxNorm);
    if (c < 1) {
      float cf = (float) c;
      for (float[] g : grads) {
        for (int i = 0; i < g.length; i++) {
          g[i] *= cf;
        }
      }
    }
    return norm;
  }
}
