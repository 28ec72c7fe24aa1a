package io.capprune.core.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ClassificationLossTest {

  @Test
  void crossEntropyByHand() {
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray logits = manager.create(new float[] {1, 2, 0, 0, 0, 3}, new Shape(2, 3));
      double row0 = -1 + Math.log(Math.exp(1) + Math.exp(2) + 1); // label 0
      double row1 = -3 + Math.log(2 + Math.exp(3)); // label 2
      assertEquals(
          (row0 + row1) / 2,
          ClassificationLoss.crossEntropy(logits, new int[] {0, 2}).getFloat(),
          1e-6);
    }
  }

  @Test
  void regressionIsMeanSquaredErrorOnTheSingleLogit() {
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray logits = manager.create(new float[] {2.5f, 0f, 4f}, new Shape(3, 1));
      float loss = ClassificationLoss.compute(logits, Targets.regression(3f, 1f, 4f)).getFloat();
      assertEquals((0.25 + 1 + 0) / 3, loss, 1e-7);
    }
  }

  @Test
  void gradientsMatchCentralDifferences() {
    SplittableRandom random = new SplittableRandom(11);
    try (NDManager manager = NDManager.newBaseManager()) {
      Shape shape = new Shape(4, 3);
      double[] x = Gradients.random(random, 12, 2);
      int[] labels = {2, 0, 1, 2};
      double[] g =
          Gradients.check(manager, x, shape, l -> ClassificationLoss.crossEntropy(l, labels), 1e-7);
      // closed form: (softmax − onehot) / B
      for (int b = 0; b < 4; b++) {
        double z = 0;
        for (int c = 0; c < 3; c++) {
          z += Math.exp(x[b * 3 + c]);
        }
        for (int c = 0; c < 3; c++) {
          double expected = (Math.exp(x[b * 3 + c]) / z - (c == labels[b] ? 1 : 0)) / 4;
          assertEquals(expected, g[b * 3 + c], 1e-12);
        }
      }
      float[] y = {0.5f, -1f, 2f, 3f};
      Gradients.check(
          manager,
          Gradients.random(random, 4, 1),
          new Shape(4, 1),
          l -> ClassificationLoss.meanSquaredError(l, y),
          1e-7);
    }
  }

  @Test
  void badLabelsAreNamed() {
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray logits = manager.zeros(new Shape(2, 3));
      assertEquals(
          "label 3 at batch row 1 is outside [0, 3)",
          assertThrows(
                  IllegalArgumentException.class,
                  () -> ClassificationLoss.crossEntropy(logits, new int[] {0, 3}))
              .getMessage());
      assertEquals(
          "logits must be [B, C] with B = 3 labels, got (2, 3)",
          assertThrows(
                  IllegalArgumentException.class,
                  () -> ClassificationLoss.crossEntropy(logits, new int[] {0, 1, 2}))
              .getMessage());
      assertEquals(
          "regression logits must be [B, 1] with B = 2 targets, got (2, 3)",
          assertThrows(
                  IllegalArgumentException.class,
                  () -> ClassificationLoss.compute(logits, Targets.regression(1f, 2f)))
              .getMessage());
    }
  }
}
