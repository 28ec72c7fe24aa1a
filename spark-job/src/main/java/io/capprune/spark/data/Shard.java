package io.capprune.spark.data;

import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.train.EncodedExample;
import java.io.Serializable;
import java.util.HashMap;
import java.util.Map;

/**
 * One partition of the training set: its tokenized examples and, once built, their representation
 * bank (teacher logits, PrC/FiC/SnC vectors), row for row. Spark caches one Shard per partition; a
 * new bank slice makes a new Shard, so the previous one stays valid as lineage.
 */
public final class Shard implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int partition;
  private final EncodedExample[] examples;
  private final RepresentationBank bank;
  private transient Map<Long, Integer> rowByIndex;

  public Shard(int partition, EncodedExample[] examples, RepresentationBank bank) {
    this.partition = partition;
    this.examples = examples;
    this.bank = bank;
    if (bank != null && bank.size() != examples.length) {
      throw new IllegalArgumentException(
          "bank of " + bank.size() + " rows for a shard of " + examples.length + " examples");
    }
  }

  public Shard withBank(RepresentationBank newBank) {
    return new Shard(partition, examples, newBank);
  }

  public int partition() {
    return partition;
  }

  public int size() {
    return examples.length;
  }

  public EncodedExample example(int row) {
    return examples[row];
  }

  public EncodedExample[] examples() {
    return examples;
  }

  public RepresentationBank bank() {
    return bank;
  }

  /**
   * Fails unless every example's label is its bank row's (classification banks), which the
   * supervised contrastive terms rely on; workers check it once per bank they upload.
   */
  public void checkBankLabels() {
    if (bank == null || !bank.hasLabels()) {
      return;
    }
    int[] rows = new int[examples.length];
    for (int i = 0; i < rows.length; i++) {
      rows[i] = i;
    }
    int[] labels = bank.labels(rows);
    for (int i = 0; i < rows.length; i++) {
      if (labels[i] != examples[i].label()) {
        throw new IllegalStateException(
            "partition "
                + partition
                + ": example "
                + i
                + " (global index "
                + examples[i].globalIndex()
                + ") has label "
                + examples[i].label()
                + " but its bank row has label "
                + labels[i]);
      }
    }
  }

  public long[] globalIndices() {
    long[] g = new long[examples.length];
    for (int i = 0; i < g.length; i++) {
      g[i] = examples[i].globalIndex();
    }
    return g;
  }

  /**
   * The local rows of those of {@code batch}'s global indices that this shard holds, in batch
   * order.
   */
  public int[] rowsOf(long[] batch) {
    Map<Long, Integer> index = rowByIndex;
    if (index == null) {
      index = new HashMap<>(examples.length * 2);
      for (int i = 0; i < examples.length; i++) {
        index.put(examples[i].globalIndex(), i);
      }
      rowByIndex = index;
    }
    int[] tmp = new int[batch.length];
    int n = 0;
    for (long g : batch) {
      Integer r = index.get(g);
      if (r != null) {
        tmp[n++] = r;
      }
    }
    return java.util.Arrays.copyOf(tmp, n);
  }
}
