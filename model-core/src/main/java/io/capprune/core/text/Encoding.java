package io.capprune.core.text;

import java.io.Serializable;
import java.util.Arrays;

/**
 * Model inputs for one example, names as in Hugging Face's {@code BatchEncoding}. Unpadded, every
 * position is a real token and the mask is all ones; {@link #padded} appends padding.
 *
 * <p>The arrays are not copied (encoding is on the hot path of data loading): treat them as
 * read-only.
 */
public record Encoding(int[] inputIds, int[] tokenTypeIds, int[] attentionMask)
    implements Serializable {

  public Encoding {
    if (inputIds == null || tokenTypeIds == null || attentionMask == null) {
      throw new IllegalArgumentException(
          "inputIds, tokenTypeIds and attentionMask must not be null");
    }
    if (tokenTypeIds.length != inputIds.length || attentionMask.length != inputIds.length) {
      throw new IllegalArgumentException(
          "inputIds, tokenTypeIds and attentionMask differ in length: "
              + inputIds.length
              + ", "
              + tokenTypeIds.length
              + ", "
              + attentionMask.length);
    }
  }

  /** Number of positions, padding included. */
  public int length() {
    return inputIds.length;
  }

  /** Number of real (attended) tokens. */
  public int realLength() {
    int n = 0;
    for (int m : attentionMask) {
      n += m;
    }
    return n;
  }

  /**
   * This encoding padded on the right to {@code length} positions with {@code padId}, token type 0
   * and mask 0, as Hugging Face pads BERT inputs.
   *
   * @throws IllegalArgumentException if the encoding is already longer than {@code length}
   */
  public Encoding padded(int length, int padId) {
    int n = inputIds.length;
    if (length < n) {
      throw new IllegalArgumentException(
          "cannot pad an encoding of " + n + " tokens to " + length + ": truncate when encoding");
    }
    if (length == n) {
      return this;
    }
    int[] ids = Arrays.copyOf(inputIds, length);
    if (padId != 0) {
      Arrays.fill(ids, n, length, padId);
    }
    return new Encoding(
        ids, Arrays.copyOf(tokenTypeIds, length), Arrays.copyOf(attentionMask, length));
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Encoding e
        && Arrays.equals(inputIds, e.inputIds)
        && Arrays.equals(tokenTypeIds, e.tokenTypeIds)
        && Arrays.equals(attentionMask, e.attentionMask);
  }

  @Override
  public int hashCode() {
    return 31 * (31 * Arrays.hashCode(inputIds) + Arrays.hashCode(tokenTypeIds))
        + Arrays.hashCode(attentionMask);
  }

  @Override
  public String toString() {
    return "Encoding[inputIds="
        + Arrays.toString(inputIds)
        + ", tokenTypeIds="
        + Arrays.toString(tokenTypeIds)
        + ", attentionMask="
        + Arrays.toString(attentionMask)
        + "]";
  }
}
