package io.capprune.spark.train;

/**
 * Where the wall time of a training step went, in seconds; also a sum over steps or its mean.
 *
 * @param publish the driver's publication: the masks when they changed, the packed weights
 *     (broadcasts)
 * @param job the Spark job: the workers' compute plus the exchange around it (scheduling,
 *     serialisation, aggregation)
 * @param workers the slowest partition's compute: the part no exchange optimisation removes
 * @param workersTotal all partitions' compute added up (the compute part of the job where the
 *     partitions take turns, as in local mode)
 * @param update the driver's update (clipping, AdamW, scores, masks)
 */
public record StepTimings(
    double publish, double job, double workers, double workersTotal, double update) {

  static final StepTimings ZERO = new StepTimings(0, 0, 0, 0, 0);

  /** The job's time outside the slowest worker's compute. */
  public double exchange() {
    return job - workers;
  }

  /** The whole step as the driver waits for it: publish, job, update. */
  public double step() {
    return publish + job + update;
  }

  StepTimings withUpdate(double seconds) {
    return new StepTimings(publish, job, workers, workersTotal, seconds);
  }

  StepTimings plus(StepTimings o) {
    return new StepTimings(
        publish + o.publish,
        job + o.job,
        workers + o.workers,
        workersTotal + o.workersTotal,
        update + o.update);
  }

  StepTimings dividedBy(double n) {
    return new StepTimings(publish / n, job / n, workers / n, workersTotal / n, update / n);
  }
}
