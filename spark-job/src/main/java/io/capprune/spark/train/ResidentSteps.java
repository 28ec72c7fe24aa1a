package io.capprune.spark.train;

import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.HostTensor;
import io.capprune.spark.data.Shard;
import io.capprune.spark.worker.ResidentStateTask;
import io.capprune.spark.worker.ResidentStepResult;
import io.capprune.spark.worker.ResidentStepTask;
import io.capprune.spark.worker.TaskSettings;
import java.util.LinkedHashMap;
import java.util.List;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

/**
 * Steps with the training state kept on the executor ({@code cap.spark.update-on = executor}, one
 * partition): the driver publishes the state once (a broadcast), every step is a Spark job whose
 * one task computes the gradient and applies the update on the executor's device ({@link
 * ResidentStepTask}) and returns the loss terms, and the driver takes the state back when it needs
 * it ({@link ResidentStateTask}): at epoch boundaries and at the end. Per step nothing of the
 * model's size moves; the driver's update, its broadcast and the gradient's round trip are gone.
 *
 * <p>The arithmetic is the driver path's with fp32 on the wire and the update through DJL ({@link
 * io.capprune.core.prune.DeviceDriverUpdate}): the same weights, masks and loss terms
 * (ResidentStepsTest).
 */
final class ResidentSteps implements DistributedTrainer.Steps {
  private final JavaSparkContext sc;
  private final TaskSettings settings;
  private final CapLossConfig loss;
  private final DriverUpdate update;
  private final DistributedTrainer.Plan plan;
  private final Broadcast<LinkedHashMap<String, HostTensor>> frozen;
  private Broadcast<TrainingState> published;
  // the executor's state is newer than the driver's (steps since the last publication or pull)
  private boolean ahead;
  private boolean stale = true;
  private JavaRDD<Shard> lastShards;

  ResidentSteps(
      JavaSparkContext sc,
      TaskSettings settings,
      CapLossConfig loss,
      DriverUpdate update,
      LinkedHashMap<String, HostTensor> frozen,
      DistributedTrainer.Plan plan) {
    this.sc = sc;
    this.settings = settings;
    this.loss = loss;
    this.update = update;
    this.plan = plan;
    this.frozen = sc.broadcast(frozen);
  }

  /**
   * Refuses, before the first step, a state the driver could not take back: it comes as a task
   * result, which Spark caps at {@code spark.driver.maxResultSize} (default 1g; a BERT-base state
   * with scores and moments is about 2.5 GB).
   */
  static void checkResultSize(SparkConf conf, TrainingState state) {
    long limit = conf.getSizeAsBytes("spark.driver.maxResultSize", "1g");
    long bytes = stateBytes(state);
    if (limit > 0 && bytes > limit) {
      throw new IllegalStateException(
          String.format(
              "cap.spark.update-on = executor: the training state (%.2f GB) comes back to the"
                  + " driver as a task result, above spark.driver.maxResultSize (%.2f GB); pass"
                  + " --conf spark.driver.maxResultSize=%dg (or 0) to spark-submit, with driver"
                  + " memory to match",
              bytes / 1e9, limit / 1e9, (long) Math.ceil(bytes * 1.1 / (1L << 30))));
    }
  }

  /** The state's tensors in bytes (float32), about what its task result holds. */
  static long stateBytes(TrainingState state) {
    long floats = 0;
    for (var m :
        List.of(state.weights(), state.masks(), state.scores(), state.expAvg(), state.expAvgSq())) {
      for (HostTensor t : m.values()) {
        floats += t.numel();
      }
    }
    return 4 * floats;
  }

  @Override
  public DistributedTrainer.StepOutcome run(
      JavaRDD<Shard> shards, TrainingState state, long step, long[] batch) {
    if (shards.getNumPartitions() != 1) {
      throw new IllegalStateException(
          "cap.spark.update-on = executor keeps the training state on one executor and needs one"
              + " partition (cap.spark.partitions = 1), the training set has "
              + shards.getNumPartitions());
    }
    long publishStart = System.nanoTime();
    if (stale) {
      if (published != null) {
        published.destroy(true);
      }
      published = sc.broadcast(state);
      stale = false;
    }
    long jobStart = System.nanoTime();
    ResidentStepTask task =
        new ResidentStepTask(
            settings,
            loss,
            update.pruning(),
            update.optimizer(),
            published,
            frozen,
            batch,
            step,
            plan.seed());
    sc.setJobDescription(DistributedTrainer.jobDescription(plan, step));
    List<ResidentStepResult> results = shards.map(task::run).collect();
    long jobEnd = System.nanoTime();
    ahead = true;
    lastShards = shards;
    ResidentStepResult r = results.get(0);
    if (r.examples() != batch.length) {
      throw new IllegalStateException(
          plan.stage()
              + " step "
              + step
              + ": the executor computed "
              + r.examples()
              + " examples of a batch of "
              + batch.length
              + " (the shard does not cover the training set)");
    }
    double job = (jobEnd - jobStart) / 1e9 - r.updateSeconds();
    return new DistributedTrainer.StepOutcome(
        r.terms(),
        r.examples(),
        r.summary(),
        new StepTimings(
            (jobStart - publishStart) / 1e9,
            job,
            r.workerSeconds(),
            r.workerSeconds(),
            r.updateSeconds()));
  }

  /** The executor's state into {@code state}, when it is newer. */
  @Override
  public void toDriver(TrainingState state, long step) {
    if (!ahead) {
      return;
    }
    ResidentStateTask task = new ResidentStateTask(settings, published, step);
    sc.setJobDescription(plan.stage() + ": training state back to the driver at step " + step);
    List<TrainingState> got = lastShards.map(shard -> task.run()).collect();
    state.overwrite(got.get(0));
    ahead = false;
  }

  /** The driver may have changed the state: the next step publishes it again. */
  @Override
  public void fromDriver() {
    stale = true;
  }

  @Override
  public int maskBroadcasts() {
    return 0;
  }

  @Override
  public void close() {
    frozen.destroy(true);
    if (published != null) {
      published.destroy(true);
    }
  }
}
