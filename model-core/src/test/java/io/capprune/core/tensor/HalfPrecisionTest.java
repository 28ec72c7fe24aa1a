package io.capprune.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class HalfPrecisionTest {

  @Test
  void tableMatchesTheDefinitionForEveryBitPattern() {
    for (int h = 0; h < 1 << 16; h++) {
      float fast = HalfPrecision.f16ToFloat((short) h);
      float slow = HalfPrecision.decodeF16Slow((short) h);
      assertEquals(
          Float.floatToRawIntBits(slow),
          Float.floatToRawIntBits(fast),
          "bits 0x" + Integer.toHexString(h));
    }
    assertEquals(1.0f, HalfPrecision.f16ToFloat((short) 0x3c00));
    assertEquals(65504f, HalfPrecision.f16ToFloat((short) 0x7bff));
    assertEquals(0x1p-24f, HalfPrecision.f16ToFloat((short) 0x0001));
    assertEquals(Float.NEGATIVE_INFINITY, HalfPrecision.f16ToFloat((short) 0xfc00));
    assertTrue(Float.isNaN(HalfPrecision.f16ToFloat((short) 0x7e00)));
  }

  @Test
  void everyF16ValueRoundTripsExactly() {
    for (int h = 0; h < 1 << 16; h++) {
      float f = HalfPrecision.f16ToFloat((short) h);
      short back = HalfPrecision.floatToF16(f);
      if (Float.isNaN(f)) {
        assertTrue(
            (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0,
            "NaN only from NaN bits, 0x" + Integer.toHexString(h));
        assertTrue(Float.isNaN(HalfPrecision.f16ToFloat(back)), "NaN 0x" + Integer.toHexString(h));
      } else {
        assertEquals(h, back & 0xffff, "value " + f);
      }
    }
  }

  @Test
  void narrowingRoundsToNearestEvenBetweenEveryPairOfNeighbours() {
    // For each pair of adjacent positive finite halves, the midpoint goes to the even one, and
    // anything a float ulp either side of it goes to the nearer one.
    for (int h = 0; h < 0x7bff; h++) {
      double lo = HalfPrecision.f16ToFloat((short) h);
      double hi = HalfPrecision.f16ToFloat((short) (h + 1));
      float mid = (float) ((lo + hi) / 2); // exact: halves have 11 significant bits
      assertEquals(lo + hi, 2.0 * mid, 0.0, "midpoint exact");
      int even = (h & 1) == 0 ? h : h + 1;
      assertEquals(
          even, HalfPrecision.floatToF16(mid) & 0xffff, "midpoint of 0x" + Integer.toHexString(h));
      assertEquals(h, HalfPrecision.floatToF16(Math.nextDown(mid)) & 0xffff);
      assertEquals(h + 1, HalfPrecision.floatToF16(Math.nextUp(mid)) & 0xffff);
      assertEquals(h | 0x8000, HalfPrecision.floatToF16(-Math.nextDown(mid)) & 0xffff);
      assertEquals(
          0x8000 | even, HalfPrecision.floatToF16(-mid) & 0xffff, "negative tie at " + mid);
    }
  }

  @Test
  void knownValues() {
    assertEquals(0x3c00, HalfPrecision.floatToF16(1f) & 0xffff);
    assertEquals(0xc000, HalfPrecision.floatToF16(-2f) & 0xffff);
    assertEquals(0x7bff, HalfPrecision.floatToF16(65504f) & 0xffff);
    assertEquals(
        0x7c00,
        HalfPrecision.floatToF16(65520f) & 0xffff,
        "65520 is the midpoint to infinity: ties to even = inf");
    assertEquals(0x7bff, HalfPrecision.floatToF16(65519.996f) & 0xffff);
    assertEquals(0x0001, HalfPrecision.floatToF16(0x1p-24f) & 0xffff, "smallest subnormal");
    assertEquals(
        0x0000,
        HalfPrecision.floatToF16(0x1p-25f) & 0xffff,
        "half the smallest subnormal ties to 0");
    assertEquals(0x0001, HalfPrecision.floatToF16(Math.nextUp(0x1p-25f)) & 0xffff);
    assertEquals(0x0400, HalfPrecision.floatToF16(0x1p-14f) & 0xffff, "smallest normal");
    assertEquals(0x8000, HalfPrecision.floatToF16(-0f) & 0xffff);
    assertEquals(0x3555, HalfPrecision.floatToF16(1f / 3) & 0xffff);
    assertEquals(0.333251953125f, HalfPrecision.f16ToFloat((short) 0x3555));
    assertEquals(
        Float.NEGATIVE_INFINITY,
        HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(Float.NEGATIVE_INFINITY)));
    assertTrue(
        Float.isNaN(
            HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(Float.intBitsToFloat(0x7f800001)))),
        "a NaN whose payload sits in the dropped bits stays NaN");
  }

  @Test
  void agreesWithPyTorchCastOnRandomFloats() {
    SplittableRandom random = new SplittableRandom(7);
    int n = 200_000;
    float[] values = new float[n];
    for (int i = 0; i < n; i++) {
      // all exponents that matter: subnormal half range to overflow
      values[i] =
          (float) ((random.nextBoolean() ? 1 : -1) * Math.pow(2, random.nextDouble(-27, 17)));
    }
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray cast = manager.create(values).toType(DataType.FLOAT16, false);
      ByteBuffer bytes = ByteBuffer.wrap(cast.toByteArray()).order(ByteOrder.nativeOrder());
      for (int i = 0; i < n; i++) {
        short torch = bytes.getShort();
        assertEquals(
            torch & 0xffff, HalfPrecision.floatToF16(values[i]) & 0xffff, "float " + values[i]);
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
      float back = HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(x));
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

  @Test
  void narrowingMatchesNumpy() {
    // numpy 2.4: np.array(v, dtype=np.float32).astype(np.float16).view(np.uint16)
    float[] v = {
      0f,
      -0f,
      1f,
      -2.5f,
      0.1f,
      65504f,
      65519f,
      65520f,
      1e-8f,
      3e-8f,
      6.1e-5f,
      5.96e-8f,
      1f / 3,
      1000.7f,
      -7e-6f,
      2049f,
      2051f,
      -1e30f,
      Float.POSITIVE_INFINITY
    };
    int[] numpy = {
      0x0, 0x8000, 0x3c00, 0xc100, 0x2e66, 0x7bff, 0x7bff, 0x7c00, 0x0, 0x1, 0x3ff, 0x1, 0x3555,
      0x63d1, 0x8075, 0x6800, 0x6802, 0xfc00, 0x7c00
    };
    for (int i = 0; i < v.length; i++) {
      assertEquals(numpy[i], HalfPrecision.floatToF16(v[i]) & 0xffff, "value " + v[i]);
    }
    assertTrue(Float.isNaN(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(Float.NaN))));
  }

  @Test
  void bf16KeepsTheTopSixteenBitsRoundingToNearestEven() {
    assertEquals(0x3f80, HalfPrecision.floatToBf16(1f) & 0xffff);
    // 1 + 2^-8 is exactly half way between bf16 1.0 and 1.0078125: ties to the even mantissa (1.0)
    assertEquals(0x3f80, HalfPrecision.floatToBf16(1f + 0x1p-8f) & 0xffff);
    assertEquals(0x3f81, HalfPrecision.floatToBf16(Math.nextUp(1f + 0x1p-8f)) & 0xffff);
    // 1 + 3*2^-8 is half way between 1.0078125 (odd) and 1.015625 (even): goes up
    assertEquals(0x3f82, HalfPrecision.floatToBf16(1f + 3 * 0x1p-8f) & 0xffff);
    assertEquals(-2.5f, HalfPrecision.bf16ToFloat(HalfPrecision.floatToBf16(-2.5f)));
    assertEquals(
        Float.POSITIVE_INFINITY,
        HalfPrecision.bf16ToFloat(HalfPrecision.floatToBf16(Float.MAX_VALUE)));
    assertTrue(
        Float.isNaN(
            HalfPrecision.bf16ToFloat(
                HalfPrecision.floatToBf16(Float.intBitsToFloat(0x7f800001)))));
    for (int b = 0; b < 1 << 16; b++) {
      float f = HalfPrecision.bf16ToFloat((short) b);
      if (!Float.isNaN(f)) {
        assertEquals(b, HalfPrecision.floatToBf16(f) & 0xffff);
      }
    }
  }
}
