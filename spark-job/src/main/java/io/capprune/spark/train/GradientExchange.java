package io.capprune.spark.train;

import io.capprune.core.exchange.MaskSet;
import io.capprune.core.exchange.PackedWeights;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.ParameterLayout;
import io.capprune.spark.data.Shard;
import io.capprune.spark.worker.TaskSettings;
import io.capprune.spark.worker.TrainStepTask;
import java.util.LinkedHashMap;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

/**
 * One training step's exchange between the driver and the partitions, in the shape of Spark MLlib's
 * {@code RDDLossFunction}: broadcast the weights, treeAggregate what every partition computes from
 * them ({@link TrainStepTask}, summed as {@link GradientBuffer}s on the executors), destroy the
 * broadcast. It also times the step's publication and Spark job.
 *
 * <p>What changes less often than the weights travels less often: the frozen tensors are broadcast
 * once for all the steps of a {@link DistributedTrainer#train} call, the masks (as bits) only when
 * they change, and the weights as the entries the masks keep.
 */
final class GradientExchange implements AutoCloseable {

  /** The driver's side of a step's publication. */
  interface Weights {
    /** The masks of the current state. */
    MaskSet masks();

    /** The trainable effective weights, packed against {@code masks} for the wire. */
    PackedWeights pack(MaskSet masks);
  }

  /**
   * @param sum the partitions' results added up: the gradient of the batch-mean loss, the batch's
   *     loss terms and its example count
   * @param timings the step's publication, Spark job and workers ({@link StepTimings#update} 0)
   */
  record Result(GradientBuffer sum, StepTimings timings) {}

  private final JavaSparkContext sc;
  private final TaskSettings settings;
  private final CapLossConfig loss;
  private final ParameterLayout layout;
  private final DistributedTrainer.Plan plan;
  private final Broadcast<LinkedHashMap<String, HostTensor>> frozen;
  private MaskSet masks;
  private Broadcast<MaskSet> masksBroadcast;
  private int maskBroadcasts;

  /**
   * @param loss the CAP objective for the workers; null = task loss only
   * @param frozen the tensors without gradient, broadcast now for every step
   * @param layout the trainable tensors' order in the packed weights and the flat gradient
   */
  GradientExchange(
      JavaSparkContext sc,
      TaskSettings settings,
      CapLossConfig loss,
      LinkedHashMap<String, HostTensor> frozen,
      ParameterLayout layout,
      DistributedTrainer.Plan plan) {
    this.sc = sc;
    this.settings = settings;
    this.loss = loss;
    this.layout = layout;
    this.plan = plan;
    this.frozen = sc.broadcast(frozen);
  }

  /** Step {@code step} on the rows {@code batch}, from the weights the driver publishes. */
  Result calculate(JavaRDD<Shard> shards, long step, long[] batch, Weights weights) {
    long publishStart = System.nanoTime();
    publishMasks(weights.masks());
    Broadcast<PackedWeights> packed = sc.broadcast(weights.pack(masks));
    long jobStart = System.nanoTime();
    TrainStepTask task =
        new TrainStepTask(
            settings, loss, packed, masksBroadcast, frozen, batch, step, plan.seed(), layout);
    sc.setJobDescription(DistributedTrainer.jobDescription(plan, step));
    GradientBuffer sum =
        shards.treeAggregate(
            GradientBuffer.empty(),
            (buf, shard) -> buf.add(task.run(shard)),
            GradientBuffer::add,
            plan.aggregateDepth());
    long jobEnd = System.nanoTime();
    // Blocking: the step's weights leave every block manager before the reference is dropped.
    // Non-blocking, the removal raced with the ContextCleaner's own removal of the collected
    // broadcast, and the loser logged "Asked to remove block broadcast_N_pieceK, which does not
    // exist" (WARN) a few times per run; the wait is one message round trip per step.
    packed.destroy(true);
    if (sum.isEmpty() || sum.examples() != batch.length) {
      throw new IllegalStateException(
          plan.stage()
              + " step "
              + step
              + ": the partitions computed "
              + (sum.isEmpty() ? 0 : sum.examples())
              + " examples of a batch of "
              + batch.length
              + " (the shards do not cover the training set)");
    }
    return new Result(
        sum,
        new StepTimings(
            (jobStart - publishStart) / 1e9,
            (jobEnd - jobStart) / 1e9,
            sum.workerSeconds(),
            sum.workerSecondsTotal(),
            0));
  }

  /** Broadcasts {@code current} when its bits differ from the masks the workers have. */
  private void publishMasks(MaskSet current) {
    if (current.sameBits(masks)) {
      return;
    }
    if (masksBroadcast != null) {
      masksBroadcast.destroy(true);
    }
    masks = current;
    masksBroadcast = sc.broadcast(masks);
    maskBroadcasts++;
  }

  /** How many times the masks were broadcast (once, plus once per change). */
  int maskBroadcasts() {
    return maskBroadcasts;
  }

  @Override
  public void close() {
    frozen.destroy(true);
    if (masksBroadcast != null) {
      masksBroadcast.destroy(true);
    }
  }
}
