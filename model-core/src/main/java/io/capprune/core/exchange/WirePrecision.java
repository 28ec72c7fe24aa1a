package io.capprune.core.exchange;

import java.util.Locale;

/**
 * How floating-point values travel between driver and executors. The driver keeps fp32 master
 * weights and sums gradients in fp32 either way; FP16 only rounds what is on the wire (weights
 * down, gradients up), with a power-of-two scale per block of values (see {@link HalfBlocks}).
 */
public enum WirePrecision {
  FP32,
  FP16;

  /**
   * @param key the configuration key, named in the error
   */
  public static WirePrecision parse(String key, String value) {
    try {
      return valueOf(value.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException | NullPointerException e) {
      throw new IllegalArgumentException(key + ": expected fp32 or fp16, got '" + value + "'");
    }
  }
}
