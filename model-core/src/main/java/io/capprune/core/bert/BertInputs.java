package io.capprune.core.bert;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.tensor.NDArrays;

/**
 * One batch of token ids for BERT, all int64 of shape [B, T], attached to the step's manager. Every
 * array the forward pass creates is attached to {@link #manager()}, so closing that manager frees
 * the whole step.
 *
 * @param inputIds word-piece ids
 * @param tokenTypeIds segment ids (0 for the first sentence, 1 for the second)
 * @param attentionMask 1 for real tokens, 0 for padding
 * @param maxInputId the largest id in inputIds when the host knows it (checked against the
 *     vocabulary without reading the device), else -1
 * @param maxTokenTypeId the same for tokenTypeIds, else -1
 */
public record BertInputs(
    NDArray inputIds,
    NDArray tokenTypeIds,
    NDArray attentionMask,
    long maxInputId,
    long maxTokenTypeId) {

  /** Ids whose maxima the forward pass reads from the device when it checks them. */
  public BertInputs(NDArray inputIds, NDArray tokenTypeIds, NDArray attentionMask) {
    this(inputIds, tokenTypeIds, attentionMask, -1, -1);
  }

  public BertInputs {
    check(inputIds, "inputIds");
    check(tokenTypeIds, "tokenTypeIds");
    check(attentionMask, "attentionMask");
    if (!tokenTypeIds.getShape().equals(inputIds.getShape())
        || !attentionMask.getShape().equals(inputIds.getShape())) {
      throw new IllegalArgumentException(
          "inputIds "
              + inputIds.getShape()
              + ", tokenTypeIds "
              + tokenTypeIds.getShape()
              + " and attentionMask "
              + attentionMask.getShape()
              + " must have the same shape [B, T]");
    }
  }

  private static void check(NDArray a, String name) {
    if (a == null) {
      throw new IllegalArgumentException(name + " must not be null");
    }
    if (a.getDataType() != DataType.INT64 || a.getShape().dimension() != 2) {
      throw new IllegalArgumentException(
          name + " must be int64 [B, T], got " + a.getDataType() + " " + a.getShape());
    }
  }

  /**
   * From per-row arrays. {@code tokenTypeIds} null means all 0 (single sentence); {@code
   * attentionMask} null means no padding.
   */
  public static BertInputs of(
      NDManager manager, int[][] inputIds, int[][] tokenTypeIds, int[][] attentionMask) {
    int b = inputIds.length;
    if (b == 0) {
      throw new IllegalArgumentException("inputIds: empty batch");
    }
    int t = inputIds[0].length;
    long[] ids = flatten(inputIds, b, t, "inputIds");
    long[] types =
        tokenTypeIds == null ? new long[b * t] : flatten(tokenTypeIds, b, t, "tokenTypeIds");
    long[] mask;
    if (attentionMask == null) {
      mask = new long[b * t];
      java.util.Arrays.fill(mask, 1L);
    } else {
      mask = flatten(attentionMask, b, t, "attentionMask");
    }
    return of(manager, b, t, ids, types, mask);
  }

  /** From row-major flat arrays of length {@code batch * seqLen}. */
  public static BertInputs of(
      NDManager manager,
      int batch,
      int seqLen,
      long[] inputIds,
      long[] tokenTypeIds,
      long[] attentionMask) {
    if (batch <= 0 || seqLen <= 0) {
      throw new IllegalArgumentException(
          "batch and seqLen must be > 0, got " + batch + ", " + seqLen);
    }
    int n = Math.multiplyExact(batch, seqLen);
    requireLength(inputIds, n, "inputIds");
    requireLength(tokenTypeIds, n, "tokenTypeIds");
    requireLength(attentionMask, n, "attentionMask");
    long[] max = check(seqLen, inputIds, tokenTypeIds, attentionMask);
    Shape shape = new Shape(batch, seqLen);
    // Engine-owned copies: the embedding's backward pass keeps the ids (see NDArrays.owned).
    return new BertInputs(
        NDArrays.owned(manager.create(inputIds, shape)),
        NDArrays.owned(manager.create(tokenTypeIds, shape)),
        NDArrays.owned(manager.create(attentionMask, shape)),
        max[0],
        max[1]);
  }

  /**
   * Host check of row-major ids of rows of {@code seqLen} tokens: no negative id or type, a mask of
   * 0 and 1. Returns the largest input id and token type, which the forward pass checks against the
   * vocabulary.
   */
  public static long[] check(
      int seqLen, long[] inputIds, long[] tokenTypeIds, long[] attentionMask) {
    int n = inputIds.length;
    long maxId = 0;
    long maxType = 0;
    for (int i = 0; i < n; i++) {
      maxId = Math.max(maxId, inputIds[i]);
      maxType = Math.max(maxType, tokenTypeIds[i]);
      if (inputIds[i] < 0) {
        throw new IllegalArgumentException(
            "inputIds[" + i / seqLen + "][" + i % seqLen + "] is negative: " + inputIds[i]);
      }
      if (tokenTypeIds[i] < 0) {
        throw new IllegalArgumentException(
            "tokenTypeIds[" + i / seqLen + "][" + i % seqLen + "] is negative: " + tokenTypeIds[i]);
      }
      if (attentionMask[i] != 0 && attentionMask[i] != 1) {
        throw new IllegalArgumentException(
            "attentionMask["
                + i / seqLen
                + "]["
                + i % seqLen
                + "] must be 0 or 1, got "
                + attentionMask[i]);
      }
    }
    return new long[] {maxId, maxType};
  }

  public NDManager manager() {
    return inputIds.getManager();
  }

  public int batchSize() {
    return (int) inputIds.getShape().get(0);
  }

  public int seqLength() {
    return (int) inputIds.getShape().get(1);
  }

  private static long[] flatten(int[][] rows, int b, int t, String name) {
    if (rows.length != b) {
      throw new IllegalArgumentException(name + " has " + rows.length + " rows, inputIds has " + b);
    }
    long[] out = new long[b * t];
    for (int i = 0; i < b; i++) {
      if (rows[i] == null || rows[i].length != t) {
        throw new IllegalArgumentException(
            name
                + " row "
                + i
                + " has length "
                + (rows[i] == null ? "null" : rows[i].length)
                + ", expected "
                + t);
      }
      for (int j = 0; j < t; j++) {
        out[i * t + j] = rows[i][j];
      }
    }
    return out;
  }

  private static void requireLength(long[] a, int n, String name) {
    if (a == null || a.length != n) {
      throw new IllegalArgumentException(
          name
              + " has length "
              + (a == null ? "null" : a.length)
              + ", expected batch * seqLen = "
              + n);
    }
  }
}
