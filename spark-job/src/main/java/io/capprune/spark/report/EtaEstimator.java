package io.capprune.spark.report;

import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Time left from a moving average of the step time. The average is taken over the last {@code
 * window} observations rather than since the start, because the first steps pay for JIT, broadcast
 * warm-up and native loading, and because the cost per step changes during a run (SnC gains a
 * snapshot slice every epoch, dev evaluations come and go). Observations may be sparse (every N
 * steps): the average is (time span) / (step span) inside the window.
 *
 * <p>Not thread-safe; the driver loop owns it.
 */
public final class EtaEstimator {

  private record Observation(long step, double seconds) {}

  private final int window;
  private final Deque<Observation> recent = new ArrayDeque<>();

  /**
   * @param window how many recent observations the average spans, at least 2
   */
  public EtaEstimator(int window) {
    if (window < 2) {
      throw new IllegalArgumentException(
          "ETA window must hold at least 2 observations, got " + window);
    }
    this.window = window;
  }

  /**
   * Records that {@code step} steps were done {@code elapsedSeconds} after a fixed origin (for
   * example the start of the run).
   */
  public void observe(long step, double elapsedSeconds) {
    if (!Double.isFinite(elapsedSeconds)) {
      throw new IllegalArgumentException("elapsed seconds must be finite, got " + elapsedSeconds);
    }
    Observation last = recent.peekLast();
    if (last != null) {
      if (step <= last.step()) {
        throw new IllegalArgumentException(
            "steps must increase: got step " + step + " after step " + last.step());
      }
      if (elapsedSeconds < last.seconds()) {
        throw new IllegalArgumentException(
            "time went backwards: "
                + elapsedSeconds
                + " s at step "
                + step
                + " after "
                + last.seconds()
                + " s at step "
                + last.step());
      }
    }
    recent.addLast(new Observation(step, elapsedSeconds));
    if (recent.size() > window) {
      recent.removeFirst();
    }
  }

  /** Mean seconds per step over the window; NaN until two observations exist. */
  public double secondsPerStep() {
    if (recent.size() < 2) {
      return Double.NaN;
    }
    Observation first = recent.peekFirst();
    Observation last = recent.peekLast();
    return (last.seconds() - first.seconds()) / (last.step() - first.step());
  }

  /** Estimated seconds until {@code totalSteps} are done; NaN until two observations exist. */
  public double secondsLeft(long totalSteps) {
    double perStep = secondsPerStep();
    if (Double.isNaN(perStep)) {
      return Double.NaN;
    }
    long remaining = Math.max(0, totalSteps - recent.peekLast().step());
    return perStep * remaining;
  }

  /** Clears the window, e.g. after a resume, where the first step pays start-up costs again. */
  public void reset() {
    recent.clear();
  }
}
