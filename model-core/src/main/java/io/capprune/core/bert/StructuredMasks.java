package io.capprune.core.bert;

import ai.djl.ndarray.NDArray;

/**
 * Masks for structured pruning (CAP-f), same data type as the parameters. Either may be null (not
 * masked). They may require gradients: first-order head/neuron importance is the gradient of the
 * loss with respect to these masks.
 *
 * @param headMask [L, numHeads]; multiplies each head's attention probabilities (after dropout), as
 *     the {@code head_mask} argument of Hugging Face's BertModel
 * @param neuronMask [L, intermediate]; multiplies each FFN neuron's GELU output
 */
public record StructuredMasks(NDArray headMask, NDArray neuronMask) {

  public static StructuredMasks heads(NDArray headMask) {
    return new StructuredMasks(headMask, null);
  }

  public static StructuredMasks neurons(NDArray neuronMask) {
    return new StructuredMasks(null, neuronMask);
  }
}
