package io.capprune.core.loss;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.function.Function;

/** Autograd against central differences, in float64. */
final class Gradients {

  private Gradients() {}

  static double[] autograd(
      NDManager manager, double[] x, Shape shape, Function<NDArray, NDArray> f) {
    NDArray input = manager.create(x, shape);
    input.setRequiresGradient(true);
    try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      collector.backward(f.apply(input));
    }
    return input.getGradient().toType(DataType.FLOAT64, false).toDoubleArray();
  }

  static double value(NDManager manager, double[] x, Shape shape, Function<NDArray, NDArray> f) {
    return f.apply(manager.create(x, shape)).getDouble();
  }

  static double[] centralDifferences(
      NDManager manager, double[] x, Shape shape, Function<NDArray, NDArray> f, double step) {
    double[] g = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      double[] plus = x.clone();
      double[] minus = x.clone();
      plus[i] += step;
      minus[i] -= step;
      g[i] = (value(manager, plus, shape, f) - value(manager, minus, shape, f)) / (2 * step);
    }
    return g;
  }

  /** Asserts autograd equals central differences to relTol of the largest component. */
  static double[] check(
      NDManager manager, double[] x, Shape shape, Function<NDArray, NDArray> f, double relTol) {
    double[] auto = autograd(manager, x, shape, f);
    double[] numeric = centralDifferences(manager, x, shape, f, 1e-6);
    double scale = 0;
    for (double v : numeric) {
      scale = Math.max(scale, Math.abs(v));
    }
    assertTrue(scale > 1e-6, "gradient is not trivially zero: " + scale);
    for (int i = 0; i < x.length; i++) {
      assertTrue(
          Math.abs(auto[i] - numeric[i]) <= relTol * scale,
          "component " + i + ": autograd " + auto[i] + " vs central difference " + numeric[i]);
    }
    return auto;
  }

  static double[] random(java.util.SplittableRandom random, int n, double scale) {
    double[] x = new double[n];
    for (int i = 0; i < n; i++) {
      x[i] = random.nextGaussian() * scale;
    }
    return x;
  }
}
