package io.capprune.core.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bert.BertInputs;
import io.capprune.core.loss.ClassificationLoss;
import io.capprune.core.tensor.NDArrays;
import java.util.ArrayList;
import java.util.List;

/**
 * Every micro-batch of one worker step on the device, checked on the host and uploaded in one copy
 * (plus one for regression scores) before any compute: on a GPU a copy from the heap waits for the
 * queued kernels, so copies between micro-batches would stall the pipeline each time.
 */
final class StepInputs {

  /**
   * One micro-batch on the device: where its parts lie in the step's uploads. The views are made in
   * the micro-batch's own manager, so what its forward pass creates is freed with it.
   */
  record Batch(
      NDArray all,
      NDArray scores,
      long offset,
      long scoreOffset,
      int size,
      int seqLength,
      boolean hasRows,
      long maxInputId,
      long maxTokenTypeId) {

    BertInputs inputs(NDManager m) {
      long n = (long) size * seqLength;
      Shape shape = new Shape(size, seqLength);
      return new BertInputs(
          slice(m, all, offset, n).reshape(shape),
          slice(m, all, offset + n, n).reshape(shape),
          slice(m, all, offset + 2 * n, n).reshape(shape),
          maxInputId,
          maxTokenTypeId);
    }

    /** [B] int64 bank rows, or null when the micro-batch names none. */
    NDArray rows(NDManager m) {
      return hasRows ? slice(m, all, offset + 3L * size * seqLength, size) : null;
    }

    /** [B] int64 class ids, or [B] float scores for regression. */
    NDArray targets(NDManager m) {
      return scores != null
          ? slice(m, scores, scoreOffset, size)
          : slice(m, all, offset + 3L * size * seqLength + size, size);
    }

    boolean regression() {
      return scores != null;
    }
  }

  private StepInputs() {}

  /**
   * @param numLabels the classifier's outputs; class ids are checked against it here
   */
  static List<Batch> upload(NDManager manager, List<MicroBatch> microBatches, int numLabels) {
    long total = 0;
    boolean regression = !microBatches.isEmpty() && microBatches.get(0).targets().isRegression();
    int scores = 0;
    for (MicroBatch mb : microBatches) {
      TokenBatch t = mb.tokens();
      if (mb.targets().isRegression() != regression) {
        throw new IllegalArgumentException(
            "a step mixes regression and classification micro-batches");
      }
      total += 3L * t.inputIds().length + 2L * mb.size();
      scores += regression ? mb.size() : 0;
    }
    if (total > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException(
          "a step of " + total + " input values does not fit one upload");
    }
    long[] all = new long[(int) total];
    float[] allScores = new float[scores];
    long[][] maxima = new long[microBatches.size()][];
    int o = 0;
    int so = 0;
    for (int i = 0; i < microBatches.size(); i++) {
      MicroBatch mb = microBatches.get(i);
      TokenBatch t = mb.tokens();
      maxima[i] =
          BertInputs.check(t.seqLength(), t.inputIds(), t.tokenTypeIds(), t.attentionMask());
      for (long[] part : new long[][] {t.inputIds(), t.tokenTypeIds(), t.attentionMask()}) {
        System.arraycopy(part, 0, all, o, part.length);
        o += part.length;
      }
      int[] rows = mb.bankRows();
      for (int r = 0; r < mb.size(); r++) {
        all[o + r] = rows == null ? 0 : rows[r];
      }
      o += mb.size();
      if (regression) {
        System.arraycopy(mb.targets().scores(), 0, allScores, so, mb.size());
        so += mb.size();
      } else {
        ClassificationLoss.checkLabels(mb.targets().classes(), numLabels);
        for (int r = 0; r < mb.size(); r++) {
          all[o + r] = mb.targets().classes()[r];
        }
      }
      o += mb.size();
    }
    // engine-owned: the embedding's backward pass keeps the ids (see NDArrays.owned)
    NDArray device = NDArrays.owned(manager.create(all));
    NDArray deviceScores = regression ? NDArrays.owned(manager.create(allScores)) : null;
    List<Batch> out = new ArrayList<>();
    o = 0;
    so = 0;
    for (int i = 0; i < microBatches.size(); i++) {
      MicroBatch mb = microBatches.get(i);
      int b = mb.size();
      out.add(
          new Batch(
              device,
              deviceScores,
              o,
              so,
              b,
              mb.tokens().seqLength(),
              mb.bankRows() != null,
              maxima[i][0],
              maxima[i][1]));
      o += mb.tokens().inputIds().length * 3 + 2 * b;
      so += regression ? b : 0;
    }
    return out;
  }

  private static NDArray slice(NDManager m, NDArray flat, long from, long length) {
    return flat.get(m, new NDIndex().addSliceDim(from, from + length));
  }
}
