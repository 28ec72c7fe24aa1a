package io.capprune.spark.report;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A plausible CAP run, generated: losses falling with noise, cubic sparsity, dev every 200 steps.
 */
final class ReportFixtures {

  private ReportFixtures() {}

  static List<StepRecord> run(long totalSteps, int logEvery) {
    Random rnd = new Random(7);
    List<StepRecord> out = new ArrayList<>();
    for (long s = logEvery; s <= totalSteps; s += logEvery) {
      double t = (double) s / totalSteps;
      double ramp = Math.min(1, Math.max(0, (t - 0.1) / 0.6));
      double sparsity = 0.9 * (1 - Math.pow(1 - ramp, 3));
      double ce = 0.7 * Math.exp(-3 * t) + 0.05 * rnd.nextDouble();
      double kd = 0.3 * Math.exp(-2 * t) + 0.02 * rnd.nextDouble();
      double prc = 0.02 + 0.005 * rnd.nextDouble();
      double snc = t < 0.35 ? Double.NaN : 0.01 + 0.003 * rnd.nextDouble();
      double fic = 0.015 + 0.004 * rnd.nextDouble();
      StepRecord.Builder b =
          StepRecord.builder(s, totalSteps)
              .epoch((int) (3 * (s - 1) / totalSteps) + 1)
              .loss(ce + kd + prc + (Double.isNaN(snc) ? 0 : snc) + fic)
              .ce(ce)
              .kd(kd)
              .prc(prc)
              .snc(snc)
              .fic(fic)
              .sparsity(sparsity)
              .threshold(1 - sparsity)
              .learningRate(3e-5 * (1 - t))
              .gradNorm(1 + rnd.nextDouble())
              .examplesPerSecond(400)
              .secondsElapsed(0.5 * s)
              .secondsLeft(0.5 * (totalSteps - s));
      if (s % 200 == 0) {
        b.dev(Map.of("accuracy", 0.93 - 0.05 * sparsity));
      }
      out.add(b.build());
    }
    return out;
  }
}
