package io.capprune.spark.train;

import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.LossTerms;
import io.capprune.core.prune.UpdateSummary;
import io.capprune.spark.report.EtaEstimator;
import io.capprune.spark.report.MetricsLog;
import io.capprune.spark.report.ProgressLine;
import io.capprune.spark.report.StepRecord;
import java.io.IOException;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The trainer's progress: every {@code logEverySteps} steps and after the last one, a {@link
 * StepRecord} of the steps since the previous one (mean loss terms, throughput, time left, the dev
 * metrics of an evaluation in between), logged as a progress line with where the step time went and
 * appended to the metrics log.
 */
final class TrainingProgress {
  // The trainer's logger: the progress lines read as the trainer's, as they always have.
  private static final Logger LOG = LoggerFactory.getLogger(DistributedTrainer.class);

  private final DistributedTrainer.Plan plan;
  private final CapLossConfig loss;
  private final MetricsLog metrics;
  private final long startStep;
  private final long startNanos = System.nanoTime();
  private final EtaEstimator eta = new EtaEstimator(20);
  private double elapsed;
  // the steps since the last record
  private LossTerms terms = LossTerms.ZERO;
  private StepTimings timings = StepTimings.ZERO;
  private long examples;
  private long lastRecordNanos = startNanos;
  private Map<String, Double> dev;
  private StepTimings lastTiming;

  /**
   * @param loss which loss terms are on (null: the task loss alone)
   * @param startStep the state's step when training (or the resumed training) began
   * @param metrics where the records go; may be null
   */
  TrainingProgress(
      DistributedTrainer.Plan plan, CapLossConfig loss, long startStep, MetricsLog metrics) {
    this.plan = plan;
    this.loss = loss;
    this.startStep = startStep;
    this.metrics = metrics;
  }

  /** Counts a finished step; {@code done} steps are done now. */
  void stepDone(long done, LossTerms stepTerms, long stepExamples, StepTimings stepTimings) {
    terms = terms.plus(stepTerms);
    timings = timings.plus(stepTimings);
    examples += stepExamples;
    elapsed = (System.nanoTime() - startNanos) / 1e9;
    eta.observe(done - startStep, elapsed);
  }

  /** Dev metrics for the next record; null (no evaluation) keeps those not yet recorded. */
  void devMetrics(Map<String, Double> metrics) {
    if (metrics != null) {
      dev = metrics;
    }
  }

  /** The record of the steps up to {@code done}, if one is due after it. */
  void recordIfDue(long done, int epoch, UpdateSummary s) throws IOException {
    int every = plan.logEverySteps();
    if (done % every != 0 && done != plan.totalSteps()) {
      return;
    }
    long n = Math.min(done % every == 0 ? every : done % every, done - startStep);
    double secs = (System.nanoTime() - lastRecordNanos) / 1e9;
    StepRecord record = record(done, epoch, s, terms.dividedBy(n), examples / Math.max(secs, 1e-9));
    StepTimings perStep = timings.dividedBy(n);
    LOG.info(
        "{} {} | s/step: workers {} exchange {} publish {} update {}",
        plan.stage(),
        ProgressLine.format(record),
        fmt(perStep.workers()),
        fmt(perStep.exchange()),
        fmt(perStep.publish()),
        fmt(perStep.update()));
    lastTiming = perStep;
    if (metrics != null) {
      metrics.append(record);
    }
    terms = LossTerms.ZERO;
    timings = StepTimings.ZERO;
    examples = 0;
    lastRecordNanos = System.nanoTime();
  }

  private StepRecord record(
      long done, int epoch, UpdateSummary s, LossTerms mean, double examplesPerSecond) {
    StepRecord.Builder r =
        StepRecord.builder(done, plan.totalSteps())
            .epoch(epoch + 1)
            .loss(mean.total() + s.regularizerLoss())
            .ce(mean.ce())
            .learningRate(s.learningRate())
            .gradNorm(s.gradNorm())
            .sparsity(s.sparsity().sparsity())
            .threshold(s.threshold())
            .examplesPerSecond(examplesPerSecond)
            .secondsElapsed(elapsed)
            .secondsLeft(eta.secondsLeft(plan.totalSteps() - startStep));
    // terms that are off stay NaN (left out of the line and the log), not 0
    if (loss != null) {
      r.kd(mean.kd());
      if (loss.contrastive()) {
        r.prc(mean.prc()).snc(mean.snc()).fic(mean.fic());
      }
    }
    if (s.lambda() > 0) {
      r.regulariser(s.regularizerLoss());
    }
    if (dev != null) {
      r.dev(dev);
      dev = null;
    }
    return r.build();
  }

  /** Writes the records so far (before a snapshot, and at the end). */
  void flush() throws IOException {
    if (metrics != null) {
      metrics.flush();
    }
  }

  /** Mean step timings over the last record's steps; null before the first record. */
  StepTimings lastTiming() {
    return lastTiming;
  }

  private static String fmt(double v) {
    return String.format("%.2f", v);
  }
}
