package io.capprune.spark.pipeline.evaluate;

import io.capprune.core.glue.GlueMetrics;
import io.capprune.core.glue.GlueTask;
import io.capprune.core.train.EncodedExample;
import java.io.Serializable;
import java.util.List;
import java.util.Map;

/**
 * One dev partition as its executor scored it: each row's position in the split, the model's answer
 * and the gold one. All that the GLUE metrics need, a few numbers per row, so the driver never
 * collects the examples themselves.
 *
 * @param rows each row's position in the dev split
 * @param predicted classification: the predicted class ids (argmax of the logits); else null
 * @param gold classification: the gold class ids; else null
 * @param predictedScores regression: the predicted scores; else null
 * @param goldScores regression: the gold scores; else null
 */
record DevPredictions(
    long[] rows, int[] predicted, int[] gold, float[] predictedScores, float[] goldScores)
    implements Serializable {

  /**
   * The predictions of one partition from the logits the model gave its examples.
   *
   * @param logits {@code examples.length x classes}, row-major
   */
  static DevPredictions of(
      EncodedExample[] examples, float[] logits, int classes, boolean regression) {
    long[] rows = new long[examples.length];
    for (int i = 0; i < rows.length; i++) {
      rows[i] = examples[i].globalIndex();
    }
    if (regression) {
      float[] predicted = new float[examples.length];
      float[] gold = new float[examples.length];
      for (int i = 0; i < rows.length; i++) {
        predicted[i] = logits[i * classes];
        gold[i] = examples[i].score();
      }
      return new DevPredictions(rows, null, null, predicted, gold);
    }
    int[] predicted = new int[examples.length];
    int[] gold = new int[examples.length];
    for (int i = 0; i < rows.length; i++) {
      int best = 0;
      for (int k = 1; k < classes; k++) {
        if (logits[i * classes + k] > logits[i * classes + best]) {
          best = k;
        }
      }
      predicted[i] = best;
      gold[i] = examples[i].label();
    }
    return new DevPredictions(rows, predicted, gold, null, null);
  }

  /**
   * The task's metrics over the partitions of a split of {@code size} rows. The rows are put back
   * in split order first, so the metrics (sums in double precision) do not depend on how the split
   * was partitioned.
   */
  static Map<String, Double> metrics(GlueTask task, List<DevPredictions> partitions, int size) {
    boolean[] seen = new boolean[size];
    int count = 0;
    if (task.isRegression()) {
      float[] predicted = new float[size];
      float[] gold = new float[size];
      for (DevPredictions p : partitions) {
        for (int i = 0; i < p.rows.length; i++) {
          int row = place(p.rows[i], seen);
          predicted[row] = p.predictedScores[i];
          gold[row] = p.goldScores[i];
        }
        count += p.rows.length;
      }
      checkComplete(count, size);
      return GlueMetrics.compute(task, predicted, gold);
    }
    int[] predicted = new int[size];
    int[] gold = new int[size];
    for (DevPredictions p : partitions) {
      for (int i = 0; i < p.rows.length; i++) {
        int row = place(p.rows[i], seen);
        predicted[row] = p.predicted[i];
        gold[row] = p.gold[i];
      }
      count += p.rows.length;
    }
    checkComplete(count, size);
    return GlueMetrics.compute(task, predicted, gold);
  }

  private static int place(long row, boolean[] seen) {
    if (row < 0 || row >= seen.length || seen[(int) row]) {
      throw new IllegalStateException(
          "dev row "
              + row
              + " is out of range or scored twice (split of "
              + seen.length
              + " rows)");
    }
    seen[(int) row] = true;
    return (int) row;
  }

  private static void checkComplete(int count, int size) {
    if (count != size) {
      throw new IllegalStateException("scored " + count + " of " + size + " dev rows");
    }
  }
}
