package io.capprune.spark.report;

import java.io.Serializable;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What the driver knows after one optimisation step: the loss terms, where pruning stands, the
 * optimiser state that matters for diagnosis, throughput, and the dev metrics when the step ended
 * with an evaluation. One record is one line of {@code metrics.jsonl}.
 *
 * <p>A loss term that is switched off (no KD teacher, no contrastive module, no regulariser) is
 * {@code NaN}, never 0: a 0 would read as "on and perfectly fitted" in the log and the plots. The
 * other doubles are {@code NaN} when unknown (for example {@code secondsLeft} before the ETA has
 * two observations, or {@code sparsity} before the first mask).
 *
 * @param step optimisation steps done, counted from 1 (the step this record ends)
 * @param totalSteps steps the run will take in all
 * @param epoch training epoch, counted from 1 like the reference's snapshot numbering
 * @param loss the total loss that was back-propagated
 * @param ce cross-entropy (or MSE for STS-B) with the gold labels
 * @param kd distillation loss against the teacher's logits
 * @param prc contrastive loss against the pre-trained model's bank (PrC)
 * @param snc contrastive loss against the snapshot bank (SnC)
 * @param fic contrastive loss against the fine-tuned teacher's bank (FiC)
 * @param regulariser soft movement's L1 term on the scores, already scaled by lambda
 * @param sparsity fraction of encoder Linear weights pruned, in [0, 1]
 * @param threshold the schedule's threshold: theta (fraction kept) for top-k, tau for soft movement
 * @param learningRate the weights' learning rate used in this step
 * @param gradNorm global gradient L2 norm before clipping
 * @param examplesPerSecond training examples per wall-clock second over the recent steps
 * @param secondsElapsed wall-clock seconds since the run (or the resumed run) began
 * @param secondsLeft estimated wall-clock seconds to the last step
 * @param dev dev-set metrics (name to value, in a stable order) if an evaluation ran at this step,
 *     else empty
 */
public record StepRecord(
    long step,
    long totalSteps,
    int epoch,
    double loss,
    double ce,
    double kd,
    double prc,
    double snc,
    double fic,
    double regulariser,
    double sparsity,
    double threshold,
    double learningRate,
    double gradNorm,
    double examplesPerSecond,
    double secondsElapsed,
    double secondsLeft,
    Map<String, Double> dev)
    implements Serializable {

  public StepRecord {
    if (step < 0) {
      throw new IllegalArgumentException("step must be >= 0, got " + step);
    }
    if (totalSteps < 1) {
      throw new IllegalArgumentException("totalSteps must be >= 1, got " + totalSteps);
    }
    if (epoch < 0) {
      throw new IllegalArgumentException("epoch must be >= 0, got " + epoch);
    }
    if (!Double.isNaN(sparsity) && (sparsity < 0 || sparsity > 1)) {
      throw new IllegalArgumentException("sparsity is a fraction in [0, 1], got " + sparsity);
    }
    LinkedHashMap<String, Double> copy = new LinkedHashMap<>();
    if (dev != null) {
      dev.forEach(
          (name, value) -> {
            if (name == null || name.isBlank() || value == null) {
              throw new IllegalArgumentException(
                  "dev metric '" + name + "' must have a name and a value");
            }
            copy.put(name, value);
          });
    }
    dev = Collections.unmodifiableMap(copy);
  }

  /** The loss components that are on in this record, in the order the log prints them. */
  public Map<String, Double> lossTerms() {
    LinkedHashMap<String, Double> terms = new LinkedHashMap<>();
    putIfOn(terms, "ce", ce);
    putIfOn(terms, "kd", kd);
    putIfOn(terms, "prc", prc);
    putIfOn(terms, "snc", snc);
    putIfOn(terms, "fic", fic);
    putIfOn(terms, "reg", regulariser);
    return terms;
  }

  public boolean hasDev() {
    return !dev.isEmpty();
  }

  private static void putIfOn(Map<String, Double> terms, String name, double value) {
    if (!Double.isNaN(value)) {
      terms.put(name, value);
    }
  }

  public static Builder builder(long step, long totalSteps) {
    return new Builder(step, totalSteps);
  }

  /**
   * The driver fills a record from several places (loss partials, schedule, optimiser, clock);
   * eighteen positional arguments invite swapped terms, so it names them. Everything unset is NaN.
   */
  public static final class Builder {
    private final long step;
    private final long totalSteps;
    private int epoch = 1;
    private double loss = Double.NaN;
    private double ce = Double.NaN;
    private double kd = Double.NaN;
    private double prc = Double.NaN;
    private double snc = Double.NaN;
    private double fic = Double.NaN;
    private double regulariser = Double.NaN;
    private double sparsity = Double.NaN;
    private double threshold = Double.NaN;
    private double learningRate = Double.NaN;
    private double gradNorm = Double.NaN;
    private double examplesPerSecond = Double.NaN;
    private double secondsElapsed = Double.NaN;
    private double secondsLeft = Double.NaN;
    private Map<String, Double> dev = Map.of();

    private Builder(long step, long totalSteps) {
      this.step = step;
      this.totalSteps = totalSteps;
    }

    public Builder epoch(int v) {
      epoch = v;
      return this;
    }

    public Builder loss(double v) {
      loss = v;
      return this;
    }

    public Builder ce(double v) {
      ce = v;
      return this;
    }

    public Builder kd(double v) {
      kd = v;
      return this;
    }

    public Builder prc(double v) {
      prc = v;
      return this;
    }

    public Builder snc(double v) {
      snc = v;
      return this;
    }

    public Builder fic(double v) {
      fic = v;
      return this;
    }

    public Builder regulariser(double v) {
      regulariser = v;
      return this;
    }

    public Builder sparsity(double v) {
      sparsity = v;
      return this;
    }

    public Builder threshold(double v) {
      threshold = v;
      return this;
    }

    public Builder learningRate(double v) {
      learningRate = v;
      return this;
    }

    public Builder gradNorm(double v) {
      gradNorm = v;
      return this;
    }

    public Builder examplesPerSecond(double v) {
      examplesPerSecond = v;
      return this;
    }

    public Builder secondsElapsed(double v) {
      secondsElapsed = v;
      return this;
    }

    public Builder secondsLeft(double v) {
      secondsLeft = v;
      return this;
    }

    public Builder dev(Map<String, Double> v) {
      dev = v;
      return this;
    }

    public StepRecord build() {
      return new StepRecord(
          step,
          totalSteps,
          epoch,
          loss,
          ce,
          kd,
          prc,
          snc,
          fic,
          regulariser,
          sparsity,
          threshold,
          learningRate,
          gradNorm,
          examplesPerSecond,
          secondsElapsed,
          secondsLeft,
          dev);
    }
  }
}
