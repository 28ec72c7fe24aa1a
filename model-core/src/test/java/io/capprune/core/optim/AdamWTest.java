package io.capprune.core.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class AdamWTest {

  @Test
  void twoStepsMatchHandComputedTransformersAdamW() {
    float[] p = {1.0f};
    float[] m = {0f};
    float[] v = {0f};
    // lr 0.1, betas 0.9/0.999, eps 1e-8, weight decay 0.01.
    // Step 1, g = 0.5: m = 0.05, v = 0.00025, step_size = 0.1*sqrt(0.001)/0.1 = 0.0316228,
    // p = 1 - 0.0316228 * 0.05/(0.0158114 + 1e-8) = 0.90000006; then p -= 0.1*0.01*p -> 0.89910006.
    AdamW.update(
        p, new float[] {0.5f}, 1f, m, v, 0, 1, AdamW.coefficients(0.1, 0.9, 0.999, 1e-8, 0.01, 1));
    assertEquals(0.05, m[0], 1e-8);
    assertEquals(0.00025, v[0], 1e-10);
    assertEquals(0.8991000632, p[0], 1e-6);
    // Step 2, g = -0.25: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225,
    // step_size = 0.1*sqrt(1-0.999^2)/(1-0.9^2) = 0.0235317, p -= 0.0235317*0.02/0.0176706 ->
    // 0.8724664,
    // then decay: *0.999 -> 0.8715939.
    AdamW.update(
        p,
        new float[] {-0.25f},
        1f,
        m,
        v,
        0,
        1,
        AdamW.coefficients(0.1, 0.9, 0.999, 1e-8, 0.01, 2));
    assertEquals(0.02, m[0], 1e-8);
    assertEquals(0.00031225, v[0], 1e-10);
    assertEquals(0.8715939079, p[0], 1e-6);
  }

  @Test
  void decayUsesLrNotStepSizeAndComesAfterTheAdamStep() {
    // Zero gradient: the Adam part is 0/(0+eps) = 0, only decay acts: p * (1 - lr*wd).
    float[] p = {2f, -4f};
    AdamW.update(
        p,
        new float[2],
        1f,
        new float[2],
        new float[2],
        0,
        2,
        AdamW.coefficients(0.5, 0.9, 0.999, 1e-8, 0.1, 1));
    assertEquals(2f * 0.95f, p[0], 1e-6);
    assertEquals(-4f * 0.95f, p[1], 1e-6);
  }

  @Test
  void gradScaleActsLikeAScaledGradient() {
    float[] p1 = {0.3f};
    float[] p2 = {0.3f};
    float[] m1 = {0.01f};
    float[] m2 = {0.01f};
    float[] v1 = {0.002f};
    float[] v2 = {0.002f};
    AdamW.StepCoefficients c = AdamW.coefficients(1e-3, 0.9, 0.999, 1e-8, 0, 5);
    AdamW.update(p1, new float[] {4f}, 0.25f, m1, v1, 0, 1, c);
    AdamW.update(p2, new float[] {1f}, 1f, m2, v2, 0, 1, c);
    assertEquals(p2[0], p1[0]);
    assertEquals(m2[0], m1[0]);
    assertEquals(v2[0], v1[0]);
    assertTrue(p1[0] < 0.3f);
  }

  @Test
  void onlyTheGivenRangeChanges() {
    float[] p = {1f, 1f, 1f};
    AdamW.update(
        p,
        new float[] {1f, 1f, 1f},
        1f,
        new float[3],
        new float[3],
        1,
        2,
        AdamW.coefficients(0.1, 0.9, 0.999, 1e-8, 0, 1));
    assertEquals(1f, p[0]);
    assertEquals(0.9f, p[1], 1e-6);
    assertEquals(1f, p[2]);
  }

  @Test
  void stepMustBeOneBased() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> AdamW.coefficients(0.1, 0.9, 0.999, 1e-8, 0, 0));
    assertTrue(e.getMessage().contains("step must be >= 1"), e.getMessage());
  }
}
