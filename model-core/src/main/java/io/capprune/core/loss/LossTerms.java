package io.capprune.core.loss;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Plain values of one step's loss, for logging and metrics. ce and kd are unweighted; prc, snc and
 * fic are the contrastive terms (unsup + sup) with wU and wS already applied, 0 when the bank is
 * absent; total = wCe·ce + wKd·kd + prc + snc + fic.
 *
 * <p>Doubles, read at the precision the loss was computed in: a float64 step (gradient checks by
 * central differences) needs its loss to more than float32's 7 digits.
 *
 * <p>The same record carries a worker's share of a global batch (each term weighted by its rows'
 * share of the batch, see io.capprune.core.train.WorkerStep), the partitions' sum, and the mean
 * over the steps of a progress line: {@link #plus} and {@link #dividedBy} are term by term.
 */
public record LossTerms(double ce, double kd, double prc, double snc, double fic, double total)
    implements Serializable {

  public static final LossTerms ZERO = new LossTerms(0, 0, 0, 0, 0, 0);

  /** {@code values} in the order ce, kd, prc, snc, fic, total (the device's term vector). */
  public static LossTerms of(double[] values) {
    if (values.length != 6) {
      throw new IllegalArgumentException(
          "6 loss terms (ce, kd, prc, snc, fic, total), got " + values.length);
    }
    return new LossTerms(values[0], values[1], values[2], values[3], values[4], values[5]);
  }

  public LossTerms plus(LossTerms o) {
    return new LossTerms(
        ce + o.ce, kd + o.kd, prc + o.prc, snc + o.snc, fic + o.fic, total + o.total);
  }

  /**
   * Each term divided by {@code n}: a sum over n steps to its mean. A division, not a
   * multiplication by 1/n, which would round differently.
   */
  public LossTerms dividedBy(double n) {
    return new LossTerms(ce / n, kd / n, prc / n, snc / n, fic / n, total / n);
  }

  /** The terms by name, in the order ce, kd, prc, snc, fic, total (for messages and checks). */
  public Map<String, Double> byName() {
    Map<String, Double> m = new LinkedHashMap<>();
    m.put("ce", ce);
    m.put("kd", kd);
    m.put("prc", prc);
    m.put("snc", snc);
    m.put("fic", fic);
    m.put("total", total);
    return m;
  }
}
