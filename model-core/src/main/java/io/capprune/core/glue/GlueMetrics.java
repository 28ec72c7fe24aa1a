package io.capprune.core.glue;

import io.capprune.core.glue.GlueTask.Metric;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * GLUE metrics with the definitions of {@code transformers.glue_compute_metrics} (scikit-learn and
 * SciPy underneath) and the {@code combined_score} of the structured reference's {@code
 * metric_glue.py}. Everything is computed in double precision.
 */
public final class GlueMetrics {
  private GlueMetrics() {}

  /**
   * The metric map of a classification task, keys in {@link GlueTask#metrics()} order: CoLA {@code
   * mcc}; SST-2, MNLI, QNLI, RTE, WNLI {@code acc}; MRPC, QQP {@code acc, f1, acc_and_f1,
   * combined_score}.
   */
  public static Map<String, Double> compute(GlueTask task, int[] predictions, int[] gold) {
    if (task.isRegression()) {
      throw new IllegalArgumentException(
          "GLUE task "
              + task.dirName()
              + " is a regression task: pass float scores, not class ids");
    }
    checkLabels(predictions, gold, task.numLabels());
    Map<String, Double> m = new LinkedHashMap<>();
    for (String key : task.metrics()) {
      switch (key) {
        case Metric.ACC -> m.put(key, accuracy(predictions, gold));
        case Metric.F1 -> m.put(key, f1(predictions, gold));
        case Metric.MCC -> m.put(key, matthews(predictions, gold));
        // Both are the mean of acc and f1 (HF's acc_and_f1, metric_glue.py's combined_score).
        case Metric.ACC_AND_F1, Metric.COMBINED_SCORE ->
            m.put(key, (m.get(Metric.ACC) + m.get(Metric.F1)) / 2);
        default -> throw new IllegalStateException("no metric " + key + " for " + task);
      }
    }
    return m;
  }

  /**
   * The metric map of STS-B: {@code pearson, spearmanr, corr, combined_score} (the last two are the
   * mean).
   */
  public static Map<String, Double> compute(GlueTask task, float[] predictions, float[] gold) {
    if (!task.isRegression()) {
      throw new IllegalArgumentException(
          "GLUE task "
              + task.dirName()
              + " is a classification task: pass class ids, not float scores");
    }
    checkLengths(predictions.length, gold.length);
    for (int i = 0; i < gold.length; i++) {
      if (!Float.isFinite(gold[i]) || !Float.isFinite(predictions[i])) {
        throw new IllegalArgumentException(
            "score "
                + i
                + " is not finite (prediction "
                + predictions[i]
                + ", gold "
                + gold[i]
                + "); unlabelled rows cannot be scored");
      }
    }
    double[] p = toDouble(predictions);
    double[] g = toDouble(gold);
    Map<String, Double> m = new LinkedHashMap<>();
    for (String key : task.metrics()) {
      switch (key) {
        case Metric.PEARSON -> m.put(key, pearson(p, g));
        case Metric.SPEARMANR -> m.put(key, spearman(p, g));
        case Metric.CORR, Metric.COMBINED_SCORE ->
            m.put(key, (m.get(Metric.PEARSON) + m.get(Metric.SPEARMANR)) / 2);
        default -> throw new IllegalStateException("no metric " + key + " for " + task);
      }
    }
    return m;
  }

  /** The task's headline number out of a map from {@link #compute}. */
  public static double main(GlueTask task, Map<String, Double> metrics) {
    Double v = metrics.get(task.mainMetric());
    if (v == null) {
      throw new IllegalArgumentException(
          "metrics "
              + metrics.keySet()
              + " lack "
              + task.dirName()
              + "'s main metric '"
              + task.mainMetric()
              + "'");
    }
    return v;
  }

  public static double accuracy(int[] predictions, int[] gold) {
    checkLengths(predictions.length, gold.length);
    int correct = 0;
    for (int i = 0; i < gold.length; i++) {
      if (predictions[i] == gold[i]) {
        correct++;
      }
    }
    return (double) correct / gold.length;
  }

  /**
   * F1 of the positive class 1 ({@code sklearn f1_score}, binary average). 0 when there are no true
   * or predicted positives, as scikit-learn's zero_division default gives.
   */
  public static double f1(int[] predictions, int[] gold) {
    checkLengths(predictions.length, gold.length);
    long tp = 0;
    long fp = 0;
    long fn = 0;
    for (int i = 0; i < gold.length; i++) {
      boolean p = predictions[i] == 1;
      boolean g = gold[i] == 1;
      if (p && g) {
        tp++;
      } else if (p) {
        fp++;
      } else if (g) {
        fn++;
      }
    }
    long denominator = 2 * tp + fp + fn;
    return denominator == 0 ? 0.0 : 2.0 * tp / denominator;
  }

  /**
   * Matthews correlation, multi-class form of {@code sklearn matthews_corrcoef}; 0 when either side
   * is constant.
   */
  public static double matthews(int[] predictions, int[] gold) {
    checkLengths(predictions.length, gold.length);
    int k = 0;
    for (int i = 0; i < gold.length; i++) {
      if (predictions[i] < 0 || gold[i] < 0) {
        throw new IllegalArgumentException(
            "class ids must be >= 0, row "
                + i
                + " has prediction "
                + predictions[i]
                + ", gold "
                + gold[i]);
      }
      k = Math.max(k, Math.max(predictions[i], gold[i]) + 1);
    }
    double[] trueCount = new double[k];
    double[] predCount = new double[k];
    double correct = 0;
    for (int i = 0; i < gold.length; i++) {
      trueCount[gold[i]]++;
      predCount[predictions[i]]++;
      if (predictions[i] == gold[i]) {
        correct++;
      }
    }
    double n = gold.length;
    double tp = 0;
    double pp = 0;
    double tt = 0;
    for (int c = 0; c < k; c++) {
      tp += trueCount[c] * predCount[c];
      pp += predCount[c] * predCount[c];
      tt += trueCount[c] * trueCount[c];
    }
    double covTruePred = correct * n - tp;
    double covPredPred = n * n - pp;
    double covTrueTrue = n * n - tt;
    if (covPredPred * covTrueTrue == 0) {
      return 0.0;
    }
    return covTruePred / Math.sqrt(covTrueTrue * covPredPred);
  }

  /** Pearson's r ({@code scipy.stats.pearsonr}); NaN when either side is constant. */
  public static double pearson(double[] x, double[] y) {
    checkLengths(x.length, y.length);
    double mx = mean(x);
    double my = mean(y);
    double sxy = 0;
    double sxx = 0;
    double syy = 0;
    for (int i = 0; i < x.length; i++) {
      double dx = x[i] - mx;
      double dy = y[i] - my;
      sxy += dx * dy;
      sxx += dx * dx;
      syy += dy * dy;
    }
    if (sxx == 0 || syy == 0) {
      return Double.NaN;
    }
    double r = sxy / Math.sqrt(sxx * syy);
    // Rounding can push |r| a hair past 1; SciPy clips too.
    return Math.max(-1.0, Math.min(1.0, r));
  }

  /**
   * Spearman's rho ({@code scipy.stats.spearmanr}): Pearson of the ranks, ties get their average
   * rank.
   */
  public static double spearman(double[] x, double[] y) {
    checkLengths(x.length, y.length);
    return pearson(ranks(x), ranks(y));
  }

  /**
   * 1-based ranks, tied values sharing the mean of the ranks they span ({@code
   * rankdata(method='average')}).
   */
  public static double[] ranks(double[] v) {
    Integer[] order = new Integer[v.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Double.compare(v[a], v[b]));
    double[] rank = new double[v.length];
    int i = 0;
    while (i < order.length) {
      int j = i;
      while (j + 1 < order.length && v[order[j + 1]] == v[order[i]]) {
        j++;
      }
      // Positions i..j (0-based) hold equal values: ranks i+1..j+1, mean (i+j)/2+1.
      double average = (i + j) / 2.0 + 1;
      for (int t = i; t <= j; t++) {
        rank[order[t]] = average;
      }
      i = j + 1;
    }
    return rank;
  }

  private static void checkLabels(int[] predictions, int[] gold, int numLabels) {
    checkLengths(predictions.length, gold.length);
    for (int i = 0; i < gold.length; i++) {
      if (gold[i] < 0 || gold[i] >= numLabels) {
        throw new IllegalArgumentException(
            "gold label of row "
                + i
                + " is "
                + gold[i]
                + ", expected 0.."
                + (numLabels - 1)
                + "; unlabelled rows cannot be scored");
      }
      if (predictions[i] < 0 || predictions[i] >= numLabels) {
        throw new IllegalArgumentException(
            "prediction of row "
                + i
                + " is "
                + predictions[i]
                + ", expected 0.."
                + (numLabels - 1));
      }
    }
  }

  private static void checkLengths(int predictions, int gold) {
    if (predictions != gold) {
      throw new IllegalArgumentException(predictions + " predictions for " + gold + " gold values");
    }
    if (gold == 0) {
      throw new IllegalArgumentException("no examples to score");
    }
  }

  private static double mean(double[] v) {
    double s = 0;
    for (double x : v) {
      s += x;
    }
    return s / v.length;
  }

  private static double[] toDouble(float[] v) {
    double[] out = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = v[i];
    }
    return out;
  }
}
