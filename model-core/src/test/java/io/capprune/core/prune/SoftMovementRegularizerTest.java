package io.capprune.core.prune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

class SoftMovementRegularizerTest {

  @Test
  void valueIsTheMeanOfPerMatrixMeans() {
    float[] a = {0f, 0f}; // mean sigmoid 0.5
    float[] b = {100f, 100f, 100f, 100f}; // mean sigmoid 1
    assertEquals(0.75, SoftMovementRegularizer.value(List.of(a, b)), 1e-12);
  }

  @Test
  void gradientMatchesFiniteDifferences() {
    float[] a = {-1.5f, 0.2f, 3f};
    float[] b = {0.7f, -0.1f, -2f, 1.1f, 0f};
    List<float[]> scores = List.of(a, b);
    float[] ga = new float[3];
    float[] gb = new float[5];
    double lambda = 7.0;
    SoftMovementRegularizer.addGradient(scores, lambda, List.of(ga, gb));
    for (int j = 0; j < 2; j++) {
      float[] s = scores.get(j);
      float[] g = j == 0 ? ga : gb;
      for (int i = 0; i < s.length; i++) {
        float orig = s[i];
        float up = orig + 1e-3f;
        float down = orig - 1e-3f;
        s[i] = up;
        double rUp = SoftMovementRegularizer.value(scores);
        s[i] = down;
        double rDown = SoftMovementRegularizer.value(scores);
        s[i] = orig;
        double fd = lambda * (rUp - rDown) / ((double) up - down);
        assertEquals(fd, g[i], 1e-5 * Math.abs(fd) + 1e-7, "matrix " + j + " index " + i);
      }
    }
    // Closed form at 0: sigmoid' = 0.25, / (2 matrices * 5 elements) * lambda.
    assertEquals(7.0 * 0.25 / 10, gb[4], 1e-7);
  }

  @Test
  void lambdaScalesWithTheThreshold() {
    assertEquals(550 * 0.05 / 0.1, SoftMovementRegularizer.lambda(550, 0.05, 0.1), 1e-9);
    assertEquals(0.0, SoftMovementRegularizer.lambda(550, 0.0, 0.1));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> SoftMovementRegularizer.lambda(1, 0.0, 0.0));
    assertEquals(
        "soft movement: final threshold must be > 0 to scale lambda, got 0.0", e.getMessage());
  }
}
