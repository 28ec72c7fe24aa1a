package io.capprune.core.bank;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class HalfTest {

  @Test
  void everyHalfSurvivesTheRoundTrip() {
    for (int h = 0; h < 0x10000; h++) {
      short half = (short) h;
      float f = Half.toFloat(half);
      if (Float.isNaN(f)) {
        assertTrue((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0, "NaN only from NaN bits, 0x" + Integer.toHexString(h));
        assertTrue(Float.isNaN(Half.toFloat(Half.fromFloat(f))));
      } else {
        assertEquals(h, Half.fromFloat(f) & 0xffff, "half 0x" + Integer.toHexString(h) + " = " + f);
      }
    }
  }

  @Test
  void knownValues() {
    assertEquals(0x3c00, Half.fromFloat(1f) & 0xffff);
    assertEquals(0xc000, Half.fromFloat(-2f) & 0xffff);
    assertEquals(0x7bff, Half.fromFloat(65504f) & 0xffff);
    assertEquals(0x7c00, Half.fromFloat(65520f) & 0xffff, "65520 is the midpoint to infinity: ties to even = inf");
    assertEquals(0x7bff, Half.fromFloat(65519.996f) & 0xffff);
    assertEquals(0x0001, Half.fromFloat(0x1p-24f) & 0xffff, "smallest subnormal");
    assertEquals(0x0000, Half.fromFloat(0x1p-25f) & 0xffff, "half the smallest subnormal ties to 0");
    assertEquals(0x0001, Half.fromFloat(Math.nextUp(0x1p-25f)) & 0xffff);
    assertEquals(0x0400, Half.fromFloat(0x1p-14f) & 0xffff, "smallest normal");
    assertEquals(0x8000, Half.fromFloat(-0f) & 0xffff);
    assertEquals(0x3555, Half.fromFloat(1f / 3) & 0xffff);
    assertEquals(0.333251953125f, Half.toFloat((short) 0x3555));
    assertEquals(Float.NEGATIVE_INFINITY, Half.toFloat(Half.fromFloat(Float.NEGATIVE_INFINITY)));
    assertTrue(Float.isNaN(Half.toFloat(Half.fromFloat(Float.intBitsToFloat(0x7f800001)))),
        "a NaN whose payload sits in the dropped bits stays NaN");
  }

  @Test
  void midpointsRoundToEvenAndNeighboursToNearest() {
    // between consecutive finite positive halves the midpoint is exact in float
    for (int h = 0; h < 0x7bff; h++) {
      float lo = Half.toFloat((short) h);
      float hi = Half.toFloat((short) (h + 1));
      float mid = (float) (((double) lo + hi) / 2);
      assertEquals((double) lo + hi, 2.0 * mid, 0.0, "midpoint exact");
      int even = (h & 1) == 0 ? h : h + 1;
      assertEquals(even, Half.fromFloat(mid) & 0xffff, "tie at " + mid);
      assertEquals(h, Half.fromFloat(Math.nextDown(mid)) & 0xffff, "below " + mid);
      assertEquals(h + 1, Half.fromFloat(Math.nextUp(mid)) & 0xffff, "above " + mid);
      assertEquals(0x8000 | even, Half.fromFloat(-mid) & 0xffff, "negative tie at " + mid);
    }
  }

  @Test
  void agreesWithPyTorchCastOnRandomFloats() {
    SplittableRandom random = new SplittableRandom(7);
    int n = 200_000;
    float[] values = new float[n];
    for (int i = 0; i < n; i++) {
      // all exponents that matter: subnormal half range to overflow
      values[i] = (float) ((random.nextBoolean() ? 1 : -1) * Math.pow(2, random.nextDouble(-27, 17)));
    }
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray cast = manager.create(values).toType(DataType.FLOAT16, false);
      ByteBuffer bytes = ByteBuffer.wrap(cast.toByteArray()).order(ByteOrder.nativeOrder());
      for (int i = 0; i < n; i++) {
        short torch = bytes.getShort();
        assertEquals(torch & 0xffff, Half.fromFloat(values[i]) & 0xffff, "float " + values[i]);
      }
    }
  }

  @Test
  void unitVectorComponentsKeepElevenBits() {
    SplittableRandom random = new SplittableRandom(3);
    double worstRelative = 0;
    double worstAbsolute = 0;
    for (int i = 0; i < 1_000_000; i++) {
      float x = (float) random.nextDouble(-1, 1);
      float back = Half.toFloat(Half.fromFloat(x));
      double error = Math.abs(back - x);
      worstAbsolute = Math.max(worstAbsolute, error);
      if (Math.abs(x) >= 0x1p-14) {
        worstRelative = Math.max(worstRelative, error / Math.abs(x));
      } else {
        assertTrue(error <= 0x1p-25, "subnormal range error " + error + " at " + x);
      }
    }
    assertTrue(worstRelative <= 0x1p-11, "relative error " + worstRelative);
    assertTrue(worstAbsolute <= 0x1p-12, "absolute error " + worstAbsolute);
    assertTrue(worstRelative > 0x1p-12, "the bound is tight, not vacuous: " + worstRelative);
  }
}
