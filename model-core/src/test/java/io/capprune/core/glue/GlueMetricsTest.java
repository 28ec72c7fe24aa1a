package io.capprune.core.glue;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Expected values are computed by hand in the comments (the formulas of scikit-learn and SciPy).
 */
class GlueMetricsTest {
  private static final double EPS = 1e-12;

  // TP = rows 0, 3; TN = row 1; FP = row 2; FN = row 4.
  private static final int[] PRED = {1, 0, 1, 1, 0};
  private static final int[] GOLD = {1, 0, 0, 1, 1};

  @Test
  void accuracyAndF1() {
    assertEquals(0.6, GlueMetrics.accuracy(PRED, GOLD), EPS);
    // 2 TP / (2 TP + FP + FN) = 4 / 6
    assertEquals(2.0 / 3, GlueMetrics.f1(PRED, GOLD), EPS);
    assertEquals(0.0, GlueMetrics.f1(new int[] {0, 0}, new int[] {0, 0}), EPS);
    assertEquals(0.0, GlueMetrics.f1(new int[] {0, 0}, new int[] {1, 1}), EPS);
  }

  @Test
  void matthewsBinary() {
    // (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2 - 1) / sqrt(3*3*2*2) = 1/6
    assertEquals(1.0 / 6, GlueMetrics.matthews(PRED, GOLD), EPS);
    assertEquals(1.0, GlueMetrics.matthews(GOLD, GOLD), EPS);
    assertEquals(-1.0, GlueMetrics.matthews(new int[] {1, 0}, new int[] {0, 1}), EPS);
    // A constant prediction has no correlation: sklearn returns 0, not NaN.
    assertEquals(0.0, GlueMetrics.matthews(new int[] {1, 1, 1}, new int[] {0, 1, 1}), EPS);
  }

  @Test
  void matthewsMulticlass() {
    // true counts [2,2,2], predicted counts [3,1,2], 3 correct, n = 6:
    // cov(t,p) = 3*6 - (6+2+4) = 6; cov(p,p) = 36 - 14 = 22; cov(t,t) = 36 - 12 = 24
    int[] gold = {0, 1, 2, 0, 1, 2};
    int[] pred = {0, 2, 1, 0, 0, 2};
    assertEquals(6 / Math.sqrt(24 * 22), GlueMetrics.matthews(pred, gold), EPS);
    assertEquals(0.26111648393354675, GlueMetrics.matthews(pred, gold), 1e-15);
  }

  @Test
  void pearsonAndSpearmanWithTies() {
    double[] x = {1, 2, 3, 4, 5};
    double[] y = {2, 4, 5, 4, 5};
    // dx = [-2,-1,0,1,2], dy = [-2,0,1,0,1]: 6 / sqrt(10 * 6)
    assertEquals(6 / Math.sqrt(60), GlueMetrics.pearson(x, y), EPS);
    // ranks of y = [1, 2.5, 4.5, 2.5, 4.5]; dy = [-2,-.5,1.5,-.5,1.5]: 7 / sqrt(10 * 9)
    assertEquals(7 / Math.sqrt(90), GlueMetrics.spearman(x, y), EPS);
    assertEquals(
        1.0, GlueMetrics.spearman(new double[] {1, 10, 100}, new double[] {0.1, 0.2, 0.3}), EPS);
    assertTrue(Double.isNaN(GlueMetrics.pearson(new double[] {1, 1, 1}, new double[] {1, 2, 3})));
  }

  @Test
  void averageRanks() {
    assertArrayEquals(
        new double[] {2, 4.5, 2, 6, 4.5, 2},
        GlueMetrics.ranks(new double[] {10, 20, 10, 30, 20, 10}),
        EPS);
    assertArrayEquals(new double[] {3, 1, 2}, GlueMetrics.ranks(new double[] {0.5, -1, 0}), EPS);
  }

  @Test
  void taskMapsAsGlueReportsThem() {
    Map<String, Double> mrpc = GlueMetrics.compute(GlueTask.MRPC, PRED, GOLD);
    assertEquals(List.of("acc", "f1", "acc_and_f1", "combined_score"), List.copyOf(mrpc.keySet()));
    assertEquals(0.6, mrpc.get("acc"), EPS);
    assertEquals(2.0 / 3, mrpc.get("f1"), EPS);
    assertEquals((0.6 + 2.0 / 3) / 2, mrpc.get("acc_and_f1"), EPS);
    assertEquals((0.6 + 2.0 / 3) / 2, mrpc.get("combined_score"), EPS);
    assertEquals(2.0 / 3, GlueMetrics.main(GlueTask.MRPC, mrpc), EPS);

    assertEquals(Map.of("mcc", 1.0 / 6), GlueMetrics.compute(GlueTask.COLA, PRED, GOLD));
    assertEquals(Map.of("acc", 0.6), GlueMetrics.compute(GlueTask.SST2, PRED, GOLD));
    assertEquals(
        Map.of("acc", 0.5),
        GlueMetrics.compute(GlueTask.MNLI, new int[] {0, 1, 2, 2}, new int[] {0, 1, 0, 1}));

    Map<String, Double> sts =
        GlueMetrics.compute(
            GlueTask.STSB, new float[] {1, 2, 3, 4, 5}, new float[] {2, 4, 5, 4, 5});
    assertEquals(
        List.of("pearson", "spearmanr", "corr", "combined_score"), List.copyOf(sts.keySet()));
    double mean = (6 / Math.sqrt(60) + 7 / Math.sqrt(90)) / 2;
    assertEquals(mean, sts.get("corr"), EPS);
    assertEquals(mean, sts.get("combined_score"), EPS);
    assertEquals(7 / Math.sqrt(90), GlueMetrics.main(GlueTask.STSB, sts), EPS);
  }

  @Test
  void badInputIsExplained() {
    assertEquals(
        "3 predictions for 2 gold values",
        assertThrows(
                IllegalArgumentException.class, () -> GlueMetrics.accuracy(new int[3], new int[2]))
            .getMessage());
    assertEquals(
        "no examples to score",
        assertThrows(
                IllegalArgumentException.class,
                () -> GlueMetrics.compute(GlueTask.SST2, new int[0], new int[0]))
            .getMessage());
    assertEquals(
        "gold label of row 1 is -1, expected 0..1; unlabelled rows cannot be scored",
        assertThrows(
                IllegalArgumentException.class,
                () -> GlueMetrics.compute(GlueTask.SST2, new int[] {0, 0}, new int[] {0, -1}))
            .getMessage());
    assertEquals(
        "prediction of row 0 is 3, expected 0..2",
        assertThrows(
                IllegalArgumentException.class,
                () -> GlueMetrics.compute(GlueTask.MNLI, new int[] {3}, new int[] {0}))
            .getMessage());
    assertEquals(
        "GLUE task STS-B is a regression task: pass float scores, not class ids",
        assertThrows(
                IllegalArgumentException.class,
                () -> GlueMetrics.compute(GlueTask.STSB, new int[] {0}, new int[] {0}))
            .getMessage());
    assertEquals(
        "GLUE task SST-2 is a classification task: pass class ids, not float scores",
        assertThrows(
                IllegalArgumentException.class,
                () -> GlueMetrics.compute(GlueTask.SST2, new float[] {0}, new float[] {0}))
            .getMessage());
    assertTrue(
        assertThrows(
                IllegalArgumentException.class,
                () ->
                    GlueMetrics.compute(
                        GlueTask.STSB, new float[] {1, 2}, new float[] {1, Float.NaN}))
            .getMessage()
            .startsWith("score 1 is not finite"));
    assertEquals(
        "metrics [acc] lack CoLA's main metric 'mcc'",
        assertThrows(
                IllegalArgumentException.class,
                () -> GlueMetrics.main(GlueTask.COLA, Map.of("acc", 1.0)))
            .getMessage());
  }
}
