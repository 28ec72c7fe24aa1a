package io.capprune.core.optim;

/**
 * AdamW as {@code transformers.optimization.AdamW} (transformers 4.7, {@code correct_bias=True}),
 * the optimizer of the reference's unstructured scripts and of the Trainer used by its structured
 * ones. For step t (1-based, per parameter) and gradient g, in float32 like torch:
 *
 * <pre>
 *   m = b1 m + (1 - b1) g
 *   v = b2 v + (1 - b2) g^2
 *   step_size = lr * sqrt(1 - b2^t) / (1 - b1^t)
 *   p = p - step_size * m / (sqrt(v) + eps)
 *   p = p - lr * wd * p                       (only when wd > 0)
 * </pre>
 *
 * This differs from {@code torch.optim.AdamW} in two places: eps is added to sqrt(v) before the
 * bias correction is folded into step_size, and decoupled decay uses the already updated p and is
 * applied after the Adam step (torch decays first: {@code p *= 1 - lr wd}).
 */
public final class AdamW {

  private AdamW() {}

  /**
   * The scalars of one step for one parameter group, computed once per step in double and rounded
   * to float as torch rounds a Python scalar ({@code 1 - b1} is rounded from double, not computed
   * as {@code 1f - (float) b1}).
   */
  public record StepCoefficients(
      float beta1,
      float oneMinusBeta1,
      float beta2,
      float oneMinusBeta2,
      float stepSize,
      float eps,
      float decay) {}

  /**
   * @param step 1-based step count of the parameter
   * @param lr learning rate for this step (after the schedule multiplier)
   */
  public static StepCoefficients coefficients(
      double lr, double beta1, double beta2, double eps, double weightDecay, long step) {
    if (step < 1) {
      throw new IllegalArgumentException("AdamW step must be >= 1, got " + step);
    }
    double bc1 = 1.0 - Math.pow(beta1, step);
    double bc2 = 1.0 - Math.pow(beta2, step);
    double stepSize = lr * Math.sqrt(bc2) / bc1;
    return new StepCoefficients(
        (float) beta1,
        (float) (1.0 - beta1),
        (float) beta2,
        (float) (1.0 - beta2),
        (float) stepSize,
        (float) eps,
        (float) (lr * weightDecay));
  }

  /**
   * One step over {@code [from, to)} with gradient {@code gradScale * grad} (the clip coefficient,
   * so clipped gradients need not be materialised).
   */
  public static void update(
      float[] p,
      float[] grad,
      float gradScale,
      float[] m,
      float[] v,
      int from,
      int to,
      StepCoefficients c) {
    final float b1 = c.beta1(), a1 = c.oneMinusBeta1(), b2 = c.beta2(), a2 = c.oneMinusBeta2();
    final float stepSize = c.stepSize(), eps = c.eps(), decay = c.decay();
    for (int i = from; i < to; i++) {
      float pi = step(p[i], grad[i] * gradScale, m, v, i, b1, a1, b2, a2, stepSize, eps);
      p[i] = pi - decay * pi;
    }
  }

  /**
   * The Adam step of one entry, before weight decay: updates the moments {@code m[i]} and {@code
   * v[i]} for gradient {@code g} and returns {@code p} moved by the bias-corrected step. Every
   * host-side update goes through here, so all of them round alike. The coefficients of {@link
   * StepCoefficients} come as floats the caller reads once per loop: reading the record's fields
   * per entry made the driver update 20-25 % slower.
   */
  public static float step(
      float p,
      float g,
      float[] m,
      float[] v,
      int i,
      float b1,
      float a1,
      float b2,
      float a2,
      float stepSize,
      float eps) {
    float mi = b1 * m[i] + a1 * g;
    float vi = b2 * v[i] + a2 * g * g;
    m[i] = mi;
    v[i] = vi;
    return p - stepSize * mi / ((float) Math.sqrt(vi) + eps);
  }
}
