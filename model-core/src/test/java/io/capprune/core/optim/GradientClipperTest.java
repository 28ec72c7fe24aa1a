package io.capprune.core.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

class GradientClipperTest {

  @Test
  void clipsByTheGlobalNormAndReturnsTheNormBeforeClipping() {
    float[] a = {3f, 0f};
    float[] b = {0f, 4f, 0f, 0f, 0f};
    double norm = GradientClipper.clip(List.of(a, b), 1.0);
    assertEquals(5.0, norm, 1e-12);
    double c = 1.0 / (5.0 + 1e-6);
    assertArrayEquals(new float[] {(float) (3 * c), 0f}, a, 1e-7f);
    assertArrayEquals(new float[] {0f, (float) (4 * c), 0f, 0f, 0f}, b, 1e-7f);
    assertEquals(1.0, GradientClipper.globalNorm(List.of(a, b)), 1e-6);
  }

  @Test
  void leavesGradientsBelowTheLimitAlone() {
    float[] a = {0.3f, 0.4f};
    assertEquals(0.5, GradientClipper.clip(List.of(a), 1.0), 1e-7);
    assertArrayEquals(new float[] {0.3f, 0.4f}, a);
    assertEquals(1.0, GradientClipper.coefficient(0.5, 1.0));
    assertEquals(1.0, GradientClipper.coefficient(1e9, Double.POSITIVE_INFINITY));
  }

  @Test
  void sumOfSquaresHandlesRangesAndRemainders() {
    float[] g = {1f, 2f, 3f, 4f, 5f, 6f, 7f};
    assertEquals(4 + 9 + 16 + 25 + 36, GradientClipper.sumOfSquares(g, 1, 6), 0);
    assertEquals(140, GradientClipper.sumOfSquares(g, 0, 7), 0);
  }

  @Test
  void rejectsNonPositiveMaxNorm() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> GradientClipper.clip(List.of(new float[1]), 0));
    assertEquals("max_grad_norm must be > 0, got 0.0", e.getMessage());
  }
}
