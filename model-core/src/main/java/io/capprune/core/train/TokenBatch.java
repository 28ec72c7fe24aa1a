package io.capprune.core.train;

import ai.djl.ndarray.NDManager;
import io.capprune.core.bert.BertInputs;
import java.util.List;

/**
 * Token ids of a micro-batch, padded to one length. The reference pads every example to
 * max_seq_length (128); padding to the batch's longest example gives the same outputs for the real
 * tokens (the attention mask removes padded keys) at a fraction of the cost on short GLUE
 * sentences.
 */
public record TokenBatch(
    int batch, int seqLength, long[] inputIds, long[] tokenTypeIds, long[] attentionMask) {

  /**
   * @param padTo pad to this length; 0 pads to the longest example
   * @param padId the id of [PAD]
   */
  public static TokenBatch pad(List<int[]> ids, List<byte[]> types, int padTo, int padId) {
    int b = ids.size();
    if (b == 0) {
      throw new IllegalArgumentException("empty micro-batch");
    }
    int longest = 0;
    for (int[] x : ids) {
      longest = Math.max(longest, x.length);
    }
    int t = padTo > 0 ? padTo : longest;
    if (longest > t) {
      throw new IllegalArgumentException(
          "example of " + longest + " tokens does not fit padding length " + t);
    }
    long[] in = new long[b * t];
    long[] ty = new long[b * t];
    long[] mask = new long[b * t];
    for (int r = 0; r < b; r++) {
      int[] x = ids.get(r);
      byte[] y = types.get(r);
      int base = r * t;
      for (int j = 0; j < t; j++) {
        if (j < x.length) {
          in[base + j] = x[j];
          ty[base + j] = y[j];
          mask[base + j] = 1;
        } else {
          in[base + j] = padId;
        }
      }
    }
    return new TokenBatch(b, t, in, ty, mask);
  }

  public BertInputs toInputs(NDManager manager) {
    return BertInputs.of(manager, batch, seqLength, inputIds, tokenTypeIds, attentionMask);
  }
}
