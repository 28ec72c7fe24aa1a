package io.capprune.core.exchange;

import io.capprune.core.checkpoint.HalfPrecision;

/**
 * fp32 arrays as IEEE binary16 with one power-of-two scale per block of {@value #BLOCK} values: the
 * block's largest magnitude is scaled into [2^14, 2^15) before rounding, so gradients of 1e-9 do
 * not flush to zero and large ones do not overflow, and every value keeps binary16's 11 significant
 * bits relative to its block's largest (relative error at most 2^-11 for values within 2^14 of it).
 * Scaling by a power of two is exact, so decoding is one multiply. Non-finite blocks go unscaled,
 * so a NaN or infinite gradient still reaches the driver as one.
 */
public final class HalfBlocks {
  public static final int BLOCK = 1024;

  private HalfBlocks() {}

  /** Encoded values: halves, and per block the power of two they were multiplied by. */
  public record Encoded(short[] halves, byte[] exponents) {}

  public static Encoded encode(float[] values) {
    int blocks = (values.length + BLOCK - 1) / BLOCK;
    short[] halves = new short[values.length];
    byte[] exponents = new byte[blocks];
    for (int b = 0; b < blocks; b++) {
      int from = b * BLOCK;
      exponents[b] = encodeBlock(values, from, Math.min(values.length, from + BLOCK) - from, halves, from);
    }
    return new Encoded(halves, exponents);
  }

  /**
   * Encodes one block of at most {@value #BLOCK} values, {@code src[srcFrom, srcFrom + n)}, into
   * {@code dst} from {@code dstFrom}; returns the block's exponent. Lets a caller encode values it
   * gathers block by block without a full-size fp32 copy.
   */
  public static byte encodeBlock(float[] src, int srcFrom, int n, short[] dst, int dstFrom) {
    float max = 0;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, Math.abs(src[srcFrom + i]));
    }
    int e = 0;
    if (max > 0 && Float.isFinite(max)) {
      // max * 2^e in [2^14, 2^15): well below binary16's largest finite value 65504
      e = Math.max(-126, Math.min(126, 14 - Math.getExponent(max)));
    }
    byte exponent = (byte) Math.max(Byte.MIN_VALUE, Math.min(Byte.MAX_VALUE, e));
    float scale = Math.scalb(1f, exponent);
    for (int i = 0; i < n; i++) {
      dst[dstFrom + i] = HalfPrecision.floatToF16(src[srcFrom + i] * scale);
    }
    return exponent;
  }

  public static float[] decode(Encoded e) {
    float[] out = new float[e.halves().length];
    decodeInto(e, out);
    return out;
  }

  /** Decodes into {@code out}, which must have exactly as many values. */
  public static void decodeInto(Encoded e, float[] out) {
    short[] h = e.halves();
    if (out.length != h.length) {
      throw new IllegalArgumentException("decoding " + h.length + " halves into " + out.length + " floats");
    }
    int blocks = (h.length + BLOCK - 1) / BLOCK;
    if (e.exponents().length != blocks) {
      throw new IllegalArgumentException(h.length + " halves need " + blocks + " block exponents, got "
          + e.exponents().length);
    }
    for (int b = 0; b < blocks; b++) {
      int from = b * BLOCK;
      int to = Math.min(h.length, from + BLOCK);
      float inv = Math.scalb(1f, -e.exponents()[b]);
      for (int i = from; i < to; i++) {
        out[i] = HalfPrecision.f16ToFloat(h[i]) * inv;
      }
    }
  }

  /** Bytes on the wire for {@code n} values (payload only). */
  public static long bytes(long n) {
    return 2 * n + (n + BLOCK - 1) / BLOCK;
  }
}
