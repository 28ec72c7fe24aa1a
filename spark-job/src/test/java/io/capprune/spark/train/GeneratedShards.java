package io.capprune.spark.train;

import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.train.EncodedExample;
import io.capprune.spark.data.Shard;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** Generated shards for the trainer's tests: no tokenizer, no files, the same data every run. */
final class GeneratedShards {
  private GeneratedShards() {}

  /**
   * Partition {@code partition} of an {@code n}-example data set, the examples {@code from}, {@code
   * from + step}, ... below {@code n}: single sentences of 4-16 tokens (ids in [5, vocab) after a
   * leading 2), labels 0/1, and teacher logits from N(0, 4), drawn from {@code r} in that order.
   */
  static Shard shard(
      SplittableRandom r, int partition, int from, int step, int n, int vocab, int hidden) {
    List<EncodedExample> ex = new ArrayList<>();
    for (int i = from; i < n; i += step) {
      int len = 4 + r.nextInt(13);
      int[] ids = new int[len];
      for (int t = 0; t < len; t++) {
        ids[t] = t == 0 ? 2 : 5 + r.nextInt(vocab - 5);
      }
      ex.add(new EncodedExample(i, ids, new byte[len], r.nextInt(2), Float.NaN));
    }
    long[] index = ex.stream().mapToLong(EncodedExample::globalIndex).toArray();
    int[] labels = ex.stream().mapToInt(EncodedExample::label).toArray();
    float[] logits = new float[ex.size() * 2];
    for (int i = 0; i < logits.length; i++) {
      logits[i] = (float) r.nextGaussian() * 2;
    }
    return new Shard(
        partition,
        ex.toArray(EncodedExample[]::new),
        new RepresentationBank(index, labels, logits, 2, hidden, n));
  }
}
