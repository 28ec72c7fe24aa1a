package io.capprune.core.bank;

/**
 * IEEE 754 binary16 conversion. {@code Float.floatToFloat16} only exists from Java 20; this project
 * targets Java 17. Bank vectors are unit vectors, so half precision keeps about 3 significant digits
 * per component (relative error at most 2^-11), which is far below the noise of the contrastive loss.
 */
public final class Half {

  private Half() {}

  /** Rounds to the nearest half, ties to even; overflow gives infinity, NaN stays NaN. */
  public static short fromFloat(float value) {
    int bits = Float.floatToRawIntBits(value);
    int sign = (bits >>> 16) & 0x8000;
    int exponent = (bits >>> 23) & 0xff;
    int mantissa = bits & 0x7fffff;
    if (exponent == 0xff) {
      // keep NaN a NaN even when its payload lives only in the low 13 bits
      int nan = mantissa != 0 ? 0x200 | (mantissa >>> 13) : 0;
      return (short) (sign | 0x7c00 | nan);
    }
    int halfExponent = exponent - 127 + 15;
    if (halfExponent >= 0x1f) {
      return (short) (sign | 0x7c00);
    }
    if (halfExponent <= 0) {
      if (halfExponent < -10) {
        // below half the smallest subnormal (2^-25): rounds to a signed zero
        return (short) sign;
      }
      int full = mantissa | 0x800000;
      int shift = 14 - halfExponent;
      int half = full >>> shift;
      int rest = full & ((1 << shift) - 1);
      int halfway = 1 << (shift - 1);
      if (rest > halfway || (rest == halfway && (half & 1) != 0)) {
        half++; // a carry into the exponent field yields the smallest normal, which is correct
      }
      return (short) (sign | half);
    }
    int half = (halfExponent << 10) | (mantissa >>> 13);
    int rest = mantissa & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1) != 0)) {
      half++; // a carry out of 65504 lands exactly on infinity (0x7c00)
    }
    return (short) (sign | half);
  }

  /** Exact: every half value is representable as a float. */
  public static float toFloat(short half) {
    int h = half & 0xffff;
    int sign = (h & 0x8000) << 16;
    int exponent = (h >>> 10) & 0x1f;
    int mantissa = h & 0x3ff;
    if (exponent == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
    }
    if (exponent == 0) {
      float magnitude = mantissa * 0x1p-24f;
      return sign != 0 ? -magnitude : magnitude;
    }
    return Float.intBitsToFloat(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
  }

  public static short[] fromFloats(float[] values) {
    short[] out = new short[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = fromFloat(values[i]);
    }
    return out;
  }
}
