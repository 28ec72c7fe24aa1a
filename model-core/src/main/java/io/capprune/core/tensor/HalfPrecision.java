package io.capprune.core.tensor;

/**
 * IEEE binary16 (F16) and bfloat16 (BF16) to and from float32: checkpoint files, the fp16 vectors
 * of the representation banks and the half-precision wire. Java 17 has no {@code
 * Float.float16ToFloat} (it came in Java 20), so this is done here. Narrowing rounds to nearest,
 * ties to even, like PyTorch's {@code tensor.half()} / {@code tensor.bfloat16()}; overflow gives
 * infinity and NaN stays NaN. Binary16 keeps 11 significant bits, so a unit vector's components
 * come back within a relative 2^-11 (far below the contrastive loss's noise).
 */
public final class HalfPrecision {

  // Every binary16 bit pattern decoded once (256 KB): decoding a checkpoint is then one load per
  // value.
  private static final float[] F16_TO_F32 = new float[1 << 16];

  static {
    for (int h = 0; h < F16_TO_F32.length; h++) {
      F16_TO_F32[h] = decodeF16Slow((short) h);
    }
  }

  private HalfPrecision() {}

  public static float f16ToFloat(short bits) {
    return F16_TO_F32[bits & 0xffff];
  }

  public static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xffff) << 16);
  }

  public static short floatToF16(float f) {
    int bits = Float.floatToRawIntBits(f);
    int sign = (bits >>> 16) & 0x8000;
    int exp = (bits >>> 23) & 0xff;
    int mant = bits & 0x7fffff;
    if (exp == 0xff) {
      // Keep NaN a NaN (quiet bit set) even when its payload lives only in the low mantissa bits.
      return (short) (sign | 0x7c00 | (mant != 0 ? 0x200 | (mant >>> 13) : 0));
    }
    int e = exp - 127 + 15;
    if (e >= 0x1f) {
      return (short) (sign | 0x7c00);
    }
    if (e <= 0) {
      if (e < -10) {
        return (short) sign; // below half of the smallest subnormal: rounds to zero
      }
      // Subnormal result: shift the full significand (with the implicit 1) into place and round.
      int m = mant | 0x800000;
      int shift = 14 - e;
      int half = 1 << (shift - 1);
      int rounded = (m + half - 1 + ((m >>> shift) & 1)) >>> shift;
      return (short) (sign | rounded);
    }
    int rounded = (mant + 0xfff + ((mant >>> 13) & 1)) >>> 13;
    // A mantissa carry correctly bumps the exponent, and up to infinity at the top of the range.
    return (short) (sign | ((e << 10) + rounded));
  }

  public static short floatToBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if ((bits & 0x7fffffff) > 0x7f800000) {
      return (short) ((bits >>> 16) | 0x40); // NaN stays NaN after truncation
    }
    return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
  }

  /**
   * The definition of binary16, kept separate from the table so tests can check one against the
   * other.
   */
  static float decodeF16Slow(short bits) {
    int h = bits & 0xffff;
    int sign = (h & 0x8000) != 0 ? -1 : 1;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 0x1f) {
      return mant == 0
          ? sign * Float.POSITIVE_INFINITY
          : Float.intBitsToFloat((h & 0x8000) << 16 | 0x7f800000 | mant << 13);
    }
    if (exp == 0) {
      return sign * Math.scalb((float) mant, -24);
    }
    return sign * Math.scalb((float) (mant | 0x400), exp - 25);
  }
}
