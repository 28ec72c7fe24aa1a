package io.capprune.core.loss;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.tensor.NDArrays;

/**
 * The vector the contrastive modules compare (docs/cap-math.md §1.1), always L2-normalised like
 * {@code F.normalize(x, dim=1, eps=1e-12)}: x / max(‖x‖, 1e-12).
 */
public final class Representation {

  /** Which vector stands for a sentence. */
  public enum Mode {
    /**
     * The pooler output (tanh(W h_CLS + b)) as fed to the classifier, i.e. after the classifier
     * dropout in training: what the reference uses on GLUE (alignrep cls).
     */
    POOLER,
    /** The raw last-layer state of token 0, no pooler: the reference's choice for SQuAD. */
    CLS,
    /**
     * Attention-mask-weighted mean of the last-layer token states (unused by the reference
     * scripts).
     */
    MEAN
  }

  static final float EPS = 1e-12f;

  /** Avoids 0/0 for an all-padding row in MEAN mode (same clamp as sentence-transformers). */
  static final float MIN_TOKENS = 1e-9f;

  private Representation() {}

  /**
   * @param classifierInput [B, H] pooled output after the classifier dropout (POOLER); may be null
   *     otherwise
   * @param lastHiddenState [B, T, H] (CLS, MEAN); may be null for POOLER
   * @param attentionMask [B, T], 1 for real tokens (MEAN); may be null otherwise
   * @return [B, H] unit vectors, differentiable with respect to the inputs
   */
  public static NDArray compute(
      Mode mode, NDArray classifierInput, NDArray lastHiddenState, NDArray attentionMask) {
    return normalize(
        switch (mode) {
          case POOLER -> require2d(classifierInput, "classifierInput");
          case CLS -> require3d(lastHiddenState).get(new NDIndex(":, 0, :"));
          case MEAN -> meanPool(require3d(lastHiddenState), attentionMask);
        });
  }

  /** Row-wise L2 normalisation of [B, H], F.normalize semantics. */
  public static NDArray normalize(NDArray x) {
    return x.div(
        x.norm(new int[] {1}, true).maximum(NDArrays.scalar(x.getManager(), EPS, x.getDataType())));
  }

  private static NDArray meanPool(NDArray hidden, NDArray attentionMask) {
    Shape shape = hidden.getShape();
    if (attentionMask == null
        || !attentionMask.getShape().equals(new Shape(shape.get(0), shape.get(1)))) {
      throw new IllegalArgumentException(
          "attentionMask must be [B, T] = ["
              + shape.get(0)
              + ", "
              + shape.get(1)
              + "] for MEAN, got "
              + (attentionMask == null ? "none" : attentionMask.getShape()));
    }
    NDArray mask = attentionMask.toType(hidden.getDataType(), false).expandDims(2);
    NDArray summed = hidden.mul(mask).sum(new int[] {1});
    NDArray count = mask.sum(new int[] {1});
    count = count.maximum(NDArrays.scalar(count.getManager(), MIN_TOKENS, count.getDataType()));
    return summed.div(count);
  }

  private static NDArray require2d(NDArray x, String name) {
    if (x == null || x.getShape().dimension() != 2) {
      throw new IllegalArgumentException(
          name + " must be [B, H], got " + (x == null ? "none" : x.getShape()));
    }
    return x;
  }

  private static NDArray require3d(NDArray x) {
    if (x == null || x.getShape().dimension() != 3) {
      throw new IllegalArgumentException(
          "lastHiddenState must be [B, T, H], got " + (x == null ? "none" : x.getShape()));
    }
    return x;
  }
}
