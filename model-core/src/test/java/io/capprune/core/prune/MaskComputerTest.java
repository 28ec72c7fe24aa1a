package io.capprune.core.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class MaskComputerTest {

  /** Brute force: sort (value desc, index asc), keep the first k. */
  private static float[] expectedTopK(float[] v, boolean magnitude, int k) {
    Integer[] idx = new Integer[v.length];
    for (int i = 0; i < v.length; i++) {
      idx[i] = i;
    }
    Arrays.sort(
        idx,
        Comparator.<Integer>comparingDouble(i -> magnitude ? -Math.abs(v[i]) : -(v[i] + 0.0))
            .thenComparingInt(i -> i));
    float[] m = new float[v.length];
    for (int j = 0; j < k; j++) {
      m[idx[j]] = 1f;
    }
    return m;
  }

  private static int ones(float[] m) {
    int c = 0;
    for (float x : m) {
      c += x == 1f ? 1 : 0;
    }
    return c;
  }

  @Test
  void keepsExactlyIntThetaNForSeveralTheta() {
    SplittableRandom r = new SplittableRandom(7);
    float[] v = new float[1003];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) r.nextGaussian();
    }
    for (double theta : new double[] {0, 0.03, 0.1, 0.5, 0.9, 0.999, 1}) {
      int k = (int) MaskComputer.keepCount(theta, v.length);
      assertEquals((int) (theta * 1003), k);
      float[] mask = new float[v.length];
      MaskComputer.topK("m", v, false, k, mask);
      assertEquals(k, ones(mask), "theta " + theta);
      assertArrayEquals(expectedTopK(v, false, k), mask, "theta " + theta);
      MaskComputer.topK("m", v, true, k, mask);
      assertArrayEquals(expectedTopK(v, true, k), mask, "magnitude theta " + theta);
    }
  }

  @Test
  void tiesAreBrokenByLowestIndex() {
    // All scores 0 (the reference's initial scores) and a few distinct values, -0.0 ties with 0.0.
    float[] v = {0f, 0f, 2f, -0.0f, 0f, -1f, 0f, 2f};
    float[] mask = new float[v.length];
    MaskComputer.topK("s", v, false, 4, mask);
    assertArrayEquals(new float[] {1, 1, 1, 0, 0, 0, 0, 1}, mask);
    MaskComputer.topK("s", v, false, 5, mask);
    assertArrayEquals(new float[] {1, 1, 1, 1, 0, 0, 0, 1}, mask);
    float[] zeros = new float[10];
    MaskComputer.topK("s", zeros, false, 3, mask = new float[10]);
    assertArrayEquals(new float[] {1, 1, 1, 0, 0, 0, 0, 0, 0, 0}, mask);
  }

  @Test
  void matchesBruteForceOnValuesSharingHighBits() {
    // Values 1 + tiny offsets share the top 16 bits, so the second radix level decides; plus
    // duplicates.
    SplittableRandom r = new SplittableRandom(3);
    float[] v = new float[5000];
    for (int i = 0; i < v.length; i++) {
      v[i] = 1f + Math.ulp(1f) * r.nextInt(300) * (r.nextBoolean() ? 1 : -1);
    }
    for (int k : new int[] {1, 17, 2500, 4999}) {
      float[] mask = new float[v.length];
      MaskComputer.topK("w", v, false, k, mask);
      assertArrayEquals(expectedTopK(v, false, k), mask, "k " + k);
    }
  }

  @Test
  void magnitudeIgnoresSign() {
    float[] v = {-3f, 1f, 2f, -0.5f};
    float[] mask = new float[4];
    MaskComputer.topK("w", v, true, 2, mask);
    assertArrayEquals(new float[] {1, 0, 1, 0}, mask);
  }

  @Test
  void globalTopKUsesOneThresholdAcrossMatrices() {
    SplittableRandom r = new SplittableRandom(11);
    List<float[]> values = new ArrayList<>();
    List<float[]> masks = new ArrayList<>();
    List<String> names = new ArrayList<>();
    int[] sizes = {40, 100, 7};
    for (int j = 0; j < sizes.length; j++) {
      float[] v = new float[sizes[j]];
      for (int i = 0; i < v.length; i++) {
        // Coarse values so that ties cross matrix boundaries; the second matrix is shifted up.
        v[i] = Math.round(r.nextGaussian() * 4) / 4f + (j == 1 ? 0.5f : 0f);
      }
      values.add(v);
      masks.add(new float[v.length]);
      names.add("m" + j);
    }
    double theta = 0.3;
    long[] kept = MaskComputer.globalTopK(names, values, false, theta, masks);
    int k = (int) (theta * 147);
    assertEquals(k, Arrays.stream(kept).sum());
    // Brute force over the concatenation: ties go to earlier matrices, then lower indices.
    float[] all = new float[147];
    int o = 0;
    for (float[] v : values) {
      System.arraycopy(v, 0, all, o, v.length);
      o += v.length;
    }
    float[] expected = expectedTopK(all, false, k);
    o = 0;
    for (int j = 0; j < sizes.length; j++) {
      assertArrayEquals(Arrays.copyOfRange(expected, o, o + sizes[j]), masks.get(j), "matrix " + j);
      assertEquals(ones(masks.get(j)), kept[j]);
      o += sizes[j];
    }
    // Not the same as per-matrix top-k: the shifted matrix keeps more than 30 %.
    assertEquals(true, kept[1] > (long) (0.3 * 100));
  }

  @Test
  void softKeepsWhereSigmoidExceedsTau() {
    // sigmoid(x) > 0.1  <=>  x > logit(0.1) = -2.1972
    float[] s = new float[400];
    for (int i = 0; i < s.length; i++) {
      s[i] = -4f + i * 0.02f;
    }
    float[] mask = new float[s.length];
    int kept = MaskComputer.softThreshold("s", s, 0.1, mask);
    int expected = 0;
    for (int i = 0; i < s.length; i++) {
      boolean keep = 1.0 / (1.0 + Math.exp(-s[i])) > 0.1;
      assertEquals(keep ? 1f : 0f, mask[i], "index " + i);
      expected += keep ? 1 : 0;
    }
    assertEquals(expected, kept);
    assertEquals(309, kept); // -4 + 0.02 i > -2.1972 for i >= 91
    assertEquals(400, MaskComputer.softThreshold("s", s, 0.0, mask));
  }

  @Test
  void softFloorKeepsHalfAPercentPlusOne() {
    // 1000 scores all far below the threshold: int(0.005*1000)+1 = 6 highest stay.
    float[] s = new float[1000];
    for (int i = 0; i < s.length; i++) {
      s[i] = -20f + (i % 97) * 0.01f;
    }
    float[] mask = new float[s.length];
    assertEquals(6, MaskComputer.softFloor(1000));
    assertEquals(6, MaskComputer.softThreshold("s", s, 0.5, mask));
    assertArrayEquals(expectedTopK(s, false, 6), mask);
    assertEquals(1, MaskComputer.softFloor(10));
    assertEquals(6, ones(mask));
  }

  @Test
  void errorsNameTheTensor() {
    float[] v = {1f, Float.NaN, 2f};
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                MaskComputer.topK(
                    "encoder.layer.0.output.dense.weight", v, false, 1, new float[3]));
    assertEquals(
        "'encoder.layer.0.output.dense.weight' holds NaN (first at flat index 1)", e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> MaskComputer.topK("q", new float[3], false, 1, new float[2]));
    assertEquals("mask of 'q' has 2 elements but the tensor has 3", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> MaskComputer.keepCount(1.5, 10));
    assertEquals("fraction of weights kept must be in [0, 1], got 1.5", e.getMessage());
  }
}
