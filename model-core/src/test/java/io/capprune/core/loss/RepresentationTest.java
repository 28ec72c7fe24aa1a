package io.capprune.core.loss;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.loss.Representation.Mode;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class RepresentationTest {

  @Test
  void modesPickTheRightVectorAndNormalise() {
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray pooled = manager.create(new float[] {3, 4, 0, 0}, new Shape(2, 2));
      // B=1, T=3, H=2
      NDArray hidden = manager.create(new float[] {0, 2, 1, 1, 7, 7}, new Shape(1, 3, 2));
      NDArray mask = manager.create(new int[] {1, 1, 0}, new Shape(1, 3));
      assertArrayEquals(
          new float[] {0.6f, 0.8f, 0, 0},
          Representation.compute(Mode.POOLER, pooled, null, null).toFloatArray(),
          1e-7f,
          "F.normalize maps a zero vector to zero (eps 1e-12), not NaN");
      assertArrayEquals(
          new float[] {0, 1},
          Representation.compute(Mode.CLS, null, hidden, null).toFloatArray(),
          1e-7f);
      // mean of the first two tokens = (0.5, 1.5); padding token ignored
      double norm = Math.sqrt(0.25 + 2.25);
      assertArrayEquals(
          new float[] {(float) (0.5 / norm), (float) (1.5 / norm)},
          Representation.compute(Mode.MEAN, null, hidden, mask).toFloatArray(),
          1e-7f);
      NDArray tiny = manager.create(new float[] {1e-13f, 0}, new Shape(1, 2));
      assertArrayEquals(
          new float[] {0.1f, 0},
          Representation.normalize(tiny).toFloatArray(),
          1e-7f,
          "below eps the vector is divided by 1e-12, not by its norm");
    }
  }

  @Test
  void normalisationGradientMatchesCentralDifferences() {
    SplittableRandom random = new SplittableRandom(2);
    try (NDManager manager = NDManager.newBaseManager()) {
      double[] w = Gradients.random(random, 6, 1);
      NDArray weights = manager.create(w, new Shape(3, 2));
      Gradients.check(
          manager,
          Gradients.random(random, 6, 1),
          new Shape(3, 2),
          x -> Representation.normalize(x).mul(weights).sum(),
          1e-7);
      NDArray maskArray = manager.create(new double[] {1, 1, 0, 1, 0, 0}, new Shape(2, 3));
      NDArray w2 = manager.create(Gradients.random(random, 4, 1), new Shape(2, 2));
      Gradients.check(
          manager,
          Gradients.random(random, 12, 1),
          new Shape(2, 3, 2),
          x -> Representation.compute(Mode.MEAN, null, x, maskArray).mul(w2).sum(),
          1e-7);
    }
  }

  @Test
  void badShapesAreNamed() {
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray hidden = manager.zeros(new Shape(2, 3, 4));
      assertEquals(
          "classifierInput must be [B, H], got none",
          assertThrows(
                  IllegalArgumentException.class,
                  () -> Representation.compute(Mode.POOLER, null, hidden, null))
              .getMessage());
      assertEquals(
          "attentionMask must be [B, T] = [2, 3] for MEAN, got (2, 4)",
          assertThrows(
                  IllegalArgumentException.class,
                  () ->
                      Representation.compute(
                          Mode.MEAN, null, hidden, manager.ones(new Shape(2, 4))))
              .getMessage());
      assertEquals(
          "lastHiddenState must be [B, T, H], got (2, 3)",
          assertThrows(
                  IllegalArgumentException.class,
                  () ->
                      Representation.compute(Mode.CLS, null, manager.zeros(new Shape(2, 3)), null))
              .getMessage());
    }
  }
}
