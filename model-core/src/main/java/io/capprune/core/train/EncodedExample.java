package io.capprune.core.train;

import java.io.Serializable;

/**
 * One tokenized GLUE example, unpadded: {@code inputIds.length} real tokens ([CLS] ... [SEP]).
 * Padding happens per micro-batch on the worker, to the batch's longest example or to
 * max-seq-length.
 *
 * @param globalIndex the example's position in the training file: its bank row's identity
 *     (docs/architecture.md)
 * @param label class id, or -1 for regression
 * @param score regression target (STS-B), NaN for classification
 */
public record EncodedExample(
    long globalIndex, int[] inputIds, byte[] tokenTypeIds, int label, float score)
    implements Serializable {

  public int length() {
    return inputIds.length;
  }
}
