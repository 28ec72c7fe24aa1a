package io.capprune.core.loss;

import ai.djl.ndarray.NDArray;
import io.capprune.core.tensor.NDArrays;
import ai.djl.ndarray.types.Shape;

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

  /** mean_b −log softmax(logits_b)[labels_b]; logits [B, C]. */
  public static NDArray crossEntropy(NDArray logits, int[] labels) {
    Shape shape = logits.getShape();
    if (shape.dimension() != 2 || shape.get(0) != labels.length) {
      throw new IllegalArgumentException(
          "logits must be [B, C] with B = " + labels.length + " labels, got " + shape);
    }
    int b = labels.length;
    int c = (int) shape.get(1);
    double[] oneHot = new double[b * c];
    for (int i = 0; i < b; i++) {
      if (labels[i] < 0 || labels[i] >= c) {
        throw new IllegalArgumentException(
            "label " + labels[i] + " at batch row " + i + " is outside [0, " + c + ")");
      }
      oneHot[i * c + labels[i]] = 1.0;
    }
    NDArray picks = logits.getManager().create(oneHot, shape).toType(logits.getDataType(), false);
    return logits.logSoftmax(1).mul(picks).sum().neg()
        .div(NDArrays.scalar(logits.getManager(), b, logits.getDataType()));
  }

  /** mean_b (logits_b − target_b)²; logits [B, 1] (or [B]). */
  public static NDArray meanSquaredError(NDArray logits, float[] targets) {
    if (logits.size() != targets.length || logits.getShape().dimension() > 2) {
      throw new IllegalArgumentException("regression logits must be [B, 1] with B = "
          + targets.length + " targets, got " + logits.getShape());
    }
    NDArray y = logits.getManager().create(targets).toType(logits.getDataType(), false);
    return logits.reshape(targets.length).sub(y).square().mean();
  }
}
