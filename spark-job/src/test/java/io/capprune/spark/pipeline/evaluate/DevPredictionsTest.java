package io.capprune.spark.pipeline.evaluate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.glue.GlueMetrics;
import io.capprune.core.glue.GlueTask;
import io.capprune.core.train.EncodedExample;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Issue 22: a dev partition hands back only its rows' positions, predictions and gold labels, and
 * the driver's metrics from them are those of the whole split in order, whatever the partitioning
 * and the order the partitions arrive in.
 */
class DevPredictionsTest {

  private static EncodedExample example(int row, int label, float score) {
    return new EncodedExample(row, new int[] {101, 7, 102}, new byte[3], label, score);
  }

  /** Cuts rows 0..n-1 into contiguous partitions of the given sizes. */
  private static List<EncodedExample[]> partitions(List<EncodedExample> all, int... sizes) {
    List<EncodedExample[]> parts = new ArrayList<>();
    int from = 0;
    for (int size : sizes) {
      parts.add(all.subList(from, from + size).toArray(EncodedExample[]::new));
      from += size;
    }
    assertEquals(all.size(), from);
    return parts;
  }

  @Test
  void classificationMetricsAreThoseOfTheWholeSplitInAnyPartitionOrder() {
    GlueTask task = GlueTask.MRPC;
    int n = 50;
    int classes = 2;
    Random rng = new Random(3);
    float[] logits = new float[n * classes];
    List<EncodedExample> all = new ArrayList<>();
    int[] gold = new int[n];
    int[] argmax = new int[n];
    for (int i = 0; i < n; i++) {
      gold[i] = rng.nextInt(classes);
      all.add(example(i, gold[i], Float.NaN));
      logits[i * classes] = (float) rng.nextGaussian();
      logits[i * classes + 1] = (float) rng.nextGaussian();
      argmax[i] = logits[i * classes + 1] > logits[i * classes] ? 1 : 0;
    }
    List<DevPredictions> scored = new ArrayList<>();
    int offset = 0;
    for (EncodedExample[] part : partitions(all, 17, 16, 17)) {
      float[] l = Arrays.copyOfRange(logits, offset * classes, (offset + part.length) * classes);
      scored.add(DevPredictions.of(part, l, classes, false));
      offset += part.length;
    }
    Collections.reverse(scored);
    Map<String, Double> m = DevPredictions.metrics(task, scored, n);
    assertEquals(GlueMetrics.compute(task, argmax, gold), m);
    assertTrue(m.containsKey("f1"), m.toString());
  }

  @Test
  void regressionMetricsDoNotDependOnThePartitionOrder() {
    GlueTask task = GlueTask.STSB;
    int n = 40;
    Random rng = new Random(5);
    float[] predicted = new float[n];
    float[] goldScores = new float[n];
    List<EncodedExample> all = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      goldScores[i] = 5 * rng.nextFloat();
      predicted[i] = goldScores[i] + (float) rng.nextGaussian();
      all.add(example(i, -1, goldScores[i]));
    }
    List<DevPredictions> scored = new ArrayList<>();
    int offset = 0;
    for (EncodedExample[] part : partitions(all, 9, 11, 20)) {
      scored.add(
          DevPredictions.of(
              part, Arrays.copyOfRange(predicted, offset, offset + part.length), 1, true));
      offset += part.length;
    }
    Map<String, Double> inOrder = DevPredictions.metrics(task, scored, n);
    Collections.reverse(scored);
    // exactly equal: the rows are put back in split order before any sum
    assertEquals(inOrder, DevPredictions.metrics(task, scored, n));
    assertEquals(GlueMetrics.compute(task, predicted, goldScores), inOrder);
  }

  @Test
  void aMissingOrTwiceScoredRowIsAnError() {
    List<EncodedExample> all = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      all.add(example(i, i % 2, Float.NaN));
    }
    float[] logits = new float[4 * 2];
    DevPredictions first =
        DevPredictions.of(all.subList(0, 2).toArray(EncodedExample[]::new), logits, 2, false);
    IllegalStateException missing =
        assertThrows(
            IllegalStateException.class,
            () -> DevPredictions.metrics(GlueTask.SST2, List.of(first), 4));
    assertTrue(missing.getMessage().contains("scored 2 of 4"), missing.getMessage());
    IllegalStateException twice =
        assertThrows(
            IllegalStateException.class,
            () -> DevPredictions.metrics(GlueTask.SST2, List.of(first, first), 4));
    assertTrue(twice.getMessage().contains("scored twice"), twice.getMessage());
  }
}
