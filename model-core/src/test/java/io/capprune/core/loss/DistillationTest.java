package io.capprune.core.loss;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class DistillationTest {

  private static double[] softmax(double[] x, double t) {
    double z = 0;
    double[] p = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      p[i] = Math.exp(x[i] / t);
      z += p[i];
    }
    for (int i = 0; i < x.length; i++) {
      p[i] /= z;
    }
    return p;
  }

  @Test
  void batchMeanKlTimesTemperatureSquaredByHand() {
    double[][] s = {{1, 0}, {0.5, 2}, {-1, 1}};
    double[][] t = {{3, 0}, {0, 0}, {1, -1}};
    double temperature = 2;
    double sum = 0;
    for (int b = 0; b < 3; b++) {
      double[] ps = softmax(s[b], temperature);
      double[] pt = softmax(t[b], temperature);
      for (int c = 0; c < 2; c++) {
        sum += pt[c] * Math.log(pt[c] / ps[c]);
      }
    }
    double expected = temperature * temperature * sum / 3; // batchmean: divide by B, not by B·C
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray student = manager.create(new float[] {1, 0, 0.5f, 2, -1, 1}, new Shape(3, 2));
      NDArray teacher = manager.create(new float[] {3, 0, 0, 0, 1, -1}, new Shape(3, 2));
      assertEquals(expected, Distillation.compute(student, teacher, 2f).getFloat(), 1e-6);
      assertEquals(0, Distillation.compute(teacher, teacher, 2f).getFloat(), 1e-7);
      // one output (STS-B): both softmaxes are 1, the reference's KD vanishes
      NDArray single = manager.create(new float[] {1, 2}, new Shape(2, 1));
      assertEquals(0f, Distillation.compute(single, single.mul(5), 2f).getFloat());
    }
  }

  @Test
  void regressionMseIsTheMeanSquaredDifferenceWithGradientIntoTheStudent() {
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray student = manager.create(new float[] {1, 2, 4}, new Shape(3, 1));
      NDArray teacher = manager.create(new float[] {0, 2, 1}, new Shape(3, 1));
      student.setRequiresGradient(true);
      teacher.setRequiresGradient(true);
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        NDArray loss = Distillation.meanSquaredError(student, teacher);
        assertEquals((1 + 0 + 9) / 3.0, loss.getFloat(), 1e-6);
        collector.backward(loss);
      }
      // d/ds mean((s - t)^2) = 2 (s - t) / B; the teacher is a constant
      assertArrayEquals(new float[] {2 / 3f, 0, 2f}, student.getGradient().toFloatArray(), 1e-6f);
      assertArrayEquals(new float[] {0, 0, 0}, teacher.getGradient().toFloatArray());
      assertThrows(
          IllegalArgumentException.class,
          () ->
              Distillation.meanSquaredError(
                  manager.zeros(new Shape(3, 2)), manager.zeros(new Shape(3, 2))));
    }
  }

  @Test
  void gradientFlowsIntoStudentOnly() {
    SplittableRandom random = new SplittableRandom(5);
    try (NDManager manager = NDManager.newBaseManager()) {
      Shape shape = new Shape(4, 3);
      double[] s = Gradients.random(random, 12, 2);
      double[] t = Gradients.random(random, 12, 2);
      NDArray teacher = manager.create(t, shape);
      double[] g =
          Gradients.check(manager, s, shape, x -> Distillation.compute(x, teacher, 2f), 1e-7);
      // closed form: T (softmax(s/T) − softmax(t/T)) / B
      for (int b = 0; b < 4; b++) {
        double[] ps = softmax(java.util.Arrays.copyOfRange(s, 3 * b, 3 * b + 3), 2);
        double[] pt = softmax(java.util.Arrays.copyOfRange(t, 3 * b, 3 * b + 3), 2);
        for (int c = 0; c < 3; c++) {
          assertEquals(2 * (ps[c] - pt[c]) / 4, g[3 * b + c], 1e-12);
        }
      }
      NDArray student = manager.create(s, shape);
      NDArray teacherLeaf = manager.create(t, shape);
      student.setRequiresGradient(true);
      teacherLeaf.setRequiresGradient(true);
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        collector.backward(Distillation.compute(student, teacherLeaf, 2f));
      }
      assertArrayEquals(g, student.getGradient().toDoubleArray(), 1e-15);
      assertArrayEquals(
          new double[12],
          teacherLeaf.getGradient().toType(DataType.FLOAT64, false).toDoubleArray(),
          0.0,
          "precomputed teacher logits are a constant");
    }
  }

  @Test
  void badInputIsNamed() {
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray a = manager.zeros(new Shape(2, 3));
      NDArray b = manager.zeros(new Shape(2, 2));
      assertEquals(
          "student logits (2, 3) and teacher logits (2, 2) must both be [B, C]",
          assertThrows(IllegalArgumentException.class, () -> Distillation.compute(a, b, 2f))
              .getMessage());
      assertEquals(
          "kdTemperature must be > 0, got 0.0",
          assertThrows(IllegalArgumentException.class, () -> Distillation.compute(a, a, 0f))
              .getMessage());
    }
  }
}
