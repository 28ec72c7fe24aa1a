package io.capprune.core.train;

import io.capprune.core.loss.Targets;
import java.util.ArrayList;
import java.util.List;

/** Cuts a partition's rows into micro-batches of at most a given size, padded per micro-batch. */
public final class MicroBatches {
  private MicroBatches() {}

  /**
   * @param rows indices into {@code examples}; also the bank rows (bank row r = example r)
   * @param padTo 0 pads each micro-batch to its longest example, otherwise to this length
   */
  public static List<MicroBatch> of(
      EncodedExample[] examples, int[] rows, int size, int padTo, int padId, boolean regression) {
    List<MicroBatch> out = new ArrayList<>();
    for (int from = 0; from < rows.length; from += size) {
      int to = Math.min(rows.length, from + size);
      int[] part = java.util.Arrays.copyOfRange(rows, from, to);
      out.add(of(examples, part, padTo, padId, regression));
    }
    return out;
  }

  public static MicroBatch of(
      EncodedExample[] examples, int[] rows, int padTo, int padId, boolean regression) {
    List<int[]> ids = new ArrayList<>(rows.length);
    List<byte[]> types = new ArrayList<>(rows.length);
    int[] labels = new int[rows.length];
    float[] scores = new float[rows.length];
    for (int i = 0; i < rows.length; i++) {
      EncodedExample e = examples[rows[i]];
      ids.add(e.inputIds());
      types.add(e.tokenTypeIds());
      labels[i] = e.label();
      scores[i] = e.score();
    }
    Targets targets = regression ? Targets.regression(scores) : Targets.classes(labels);
    return new MicroBatch(TokenBatch.pad(ids, types, padTo, padId), targets, rows);
  }

  public static int[] allRows(int n) {
    int[] r = new int[n];
    for (int i = 0; i < n; i++) {
      r[i] = i;
    }
    return r;
  }
}
