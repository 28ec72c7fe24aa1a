package io.capprune.spark.report;

import java.util.Locale;
import java.util.Map;

/**
 * The one-line progress message the driver logs every {@code log-every-steps}, for example {@code
 * step 120/2000 (6.0%) ep 1 | loss 0.8123 ce 0.6931 kd 0.1012 prc 0.0150 snc 0.0000 fic 0.0140 |
 * sparsity 12.3% | lr 2.9e-05 | 412 ex/s | 00:03:12 left}. Terms that are off and values that are
 * unknown are left out rather than printed as NaN, so the line stays short enough to scan in a YARN
 * or Kubernetes log. Everything else goes to {@code metrics.jsonl}.
 */
public final class ProgressLine {

  private ProgressLine() {}

  public static String format(StepRecord r) {
    StringBuilder s = new StringBuilder(160);
    s.append("step ")
        .append(r.step())
        .append('/')
        .append(r.totalSteps())
        .append(" (")
        .append(fixed(1, 100.0 * r.step() / r.totalSteps()))
        .append("%)")
        .append(" ep ")
        .append(r.epoch());
    s.append(" | loss ").append(lossValue(r.loss()));
    for (Map.Entry<String, Double> t : r.lossTerms().entrySet()) {
      s.append(' ').append(t.getKey()).append(' ').append(lossValue(t.getValue()));
    }
    if (Double.isFinite(r.sparsity())) {
      s.append(" | sparsity ").append(fixed(1, 100 * r.sparsity())).append('%');
    }
    if (Double.isFinite(r.learningRate())) {
      double lr = r.learningRate();
      s.append(" | lr ").append(lr == 0 ? "0" : String.format(Locale.ROOT, "%.1e", lr));
    }
    if (Double.isFinite(r.examplesPerSecond())) {
      // Two significant figures are all a throughput estimate deserves; CPU runs see 2-5 ex/s.
      double eps = r.examplesPerSecond();
      s.append(" | ").append(eps >= 100 ? fixed(0, eps) : fixed(1, eps)).append(" ex/s");
    }
    s.append(" | ").append(duration(r.secondsLeft())).append(" left");
    if (r.hasDev()) {
      s.append(" | dev");
      r.dev()
          .forEach((name, value) -> s.append(' ').append(name).append(' ').append(fixed(4, value)));
    }
    return s.toString();
  }

  /**
   * Wall-clock time as {@code HH:MM:SS}, with a day count in front from 24 h on ({@code 2d
   * 03:04:05}); {@code --:--:--} when unknown.
   */
  public static String duration(double seconds) {
    if (!Double.isFinite(seconds) || seconds < 0) {
      return "--:--:--";
    }
    long total = Math.round(seconds);
    long days = total / 86_400;
    long h = total / 3600 % 24;
    long m = total / 60 % 60;
    long sec = total % 60;
    String hms = String.format(Locale.ROOT, "%02d:%02d:%02d", h, m, sec);
    return days > 0 ? days + "d " + hms : hms;
  }

  // Four decimals read well for losses of order 0.01-10; the L1 regulariser and late contrastive
  // terms can be far smaller and would all print as 0.0000, so those switch to scientific notation.
  static String lossValue(double v) {
    if (Double.isNaN(v) || Double.isInfinite(v)) {
      return Double.toString(v);
    }
    double a = Math.abs(v);
    if (a != 0 && (a < 1e-3 || a >= 1e5)) {
      return String.format(Locale.ROOT, "%.2e", v);
    }
    return fixed(4, v);
  }

  private static String fixed(int decimals, double v) {
    return String.format(Locale.ROOT, "%." + decimals + "f", v);
  }
}
