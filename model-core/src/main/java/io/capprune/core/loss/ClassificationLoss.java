package io.capprune.core.loss;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.tensor.NDArrays;

/**
 * The task loss of {@code BertForSequenceClassification}: cross-entropy, mean over the batch, for
 * classification; mean squared error on the single logit for regression (num_labels = 1, STS-B).
 */
public final class ClassificationLoss {

  private ClassificationLoss() {}

  /** Dispatches like Hugging Face: one output column means regression. */
  public static NDArray compute(NDArray logits, Targets targets) {
    return targets.isRegression()
        ? meanSquaredError(logits, targets.scores())
        : crossEntropy(logits, targets.classes());
  }

  /**
   * The same on the device: {@code targets} is [B] int64 class ids (checked on the host when they
   * were uploaded) or [B] float scores when {@code regression}.
   */
  public static NDArray compute(NDArray logits, NDArray targets, boolean regression) {
    return regression ? meanSquaredError(logits, targets) : crossEntropy(logits, targets);
  }

  /** mean_b −log softmax(logits_b)[labels_b]; logits [B, C]. */
  public static NDArray crossEntropy(NDArray logits, int[] labels) {
    checkLabels(logits.getShape(), labels);
    return crossEntropy(
        logits, NDArrays.owned(logits.getManager().create(NDArrays.toLongs(labels))));
  }

  /** Host check of class ids against logits [B, C], before they go to the device. */
  public static void checkLabels(Shape shape, int[] labels) {
    if (shape.dimension() != 2 || shape.get(0) != labels.length) {
      throw new IllegalArgumentException(
          "logits must be [B, C] with B = " + labels.length + " labels, got " + shape);
    }
    checkLabels(labels, (int) shape.get(1));
  }

  /** Every label in [0, classes), or an error naming the row. */
  public static void checkLabels(int[] labels, int classes) {
    for (int i = 0; i < labels.length; i++) {
      if (labels[i] < 0 || labels[i] >= classes) {
        throw new IllegalArgumentException(
            "label " + labels[i] + " at batch row " + i + " is outside [0, " + classes + ")");
      }
    }
  }

  /** Cross-entropy against [B] int64 labels on the logits' device. */
  public static NDArray crossEntropy(NDArray logits, NDArray labels) {
    long b = logits.getShape().get(0);
    return logits
        .logSoftmax(1)
        .gather(labels.reshape(b, 1), 1)
        .sum()
        .neg()
        .div(NDArrays.scalar(logits.getManager(), b, logits.getDataType()));
  }

  /** mean_b (logits_b − target_b)²; logits [B, 1] (or [B]). */
  public static NDArray meanSquaredError(NDArray logits, float[] targets) {
    if (logits.size() != targets.length || logits.getShape().dimension() > 2) {
      throw new IllegalArgumentException(
          "regression logits must be [B, 1] with B = "
              + targets.length
              + " targets, got "
              + logits.getShape());
    }
    return meanSquaredError(logits, NDArrays.owned(logits.getManager().create(targets)));
  }

  /** Mean squared error against [B] float targets on the logits' device. */
  public static NDArray meanSquaredError(NDArray logits, NDArray targets) {
    long b = targets.getShape().size();
    return logits.reshape(b).sub(targets.toType(logits.getDataType(), false)).square().mean();
  }
}
