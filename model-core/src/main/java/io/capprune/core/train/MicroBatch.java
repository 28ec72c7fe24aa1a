package io.capprune.core.train;

import io.capprune.core.loss.Targets;

/**
 * A micro-batch as a worker sees it: padded tokens, targets, and the rows of the shard's bank that
 * hold these examples (for teacher logits, bank slices and the negative draw).
 */
public record MicroBatch(TokenBatch tokens, Targets targets, int[] bankRows) {
  public MicroBatch {
    if (targets.size() != tokens.batch()
        || (bankRows != null && bankRows.length != tokens.batch())) {
      throw new IllegalArgumentException(
          "micro-batch of "
              + tokens.batch()
              + " rows has "
              + targets.size()
              + " targets and "
              + (bankRows == null ? "no" : bankRows.length)
              + " bank rows");
    }
  }

  public int size() {
    return tokens.batch();
  }
}
