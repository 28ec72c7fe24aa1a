package io.capprune.spark.worker;

import ai.djl.ndarray.NDArray;
import io.capprune.core.bank.DeviceBank;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.loss.CapLoss;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.train.MicroBatch;
import io.capprune.core.train.MicroBatches;
import io.capprune.core.train.WorkerStep;
import io.capprune.spark.data.Shard;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.broadcast.Broadcast;

/**
 * What a partition's share of a training step needs besides the weights, whichever way the weights
 * arrive ({@link TrainStepTask}: the driver's broadcast; {@link ResidentStepTask}: the state the
 * executor keeps): the frozen parameters and the shard's bank on the device, the rows of the global
 * batch as micro-batches, the worker, and the step's seed for this partition.
 */
record ShardStep(
    Map<String, NDArray> frozen,
    DeviceBank bank,
    List<MicroBatch> microBatches,
    WorkerStep worker,
    long partitionSeed) {

  /** Fails when the CAP objective is on and the shard has no bank (before any device work). */
  static void checkBank(CapLossConfig loss, Shard shard) {
    if (loss != null && shard.bank() == null) {
      throw new IllegalStateException(
          "partition " + shard.partition() + " has no representation bank");
    }
  }

  /**
   * @param loss the CAP objective; null = task loss only
   * @param frozen parameters without gradient, broadcast once per stage; may be null
   * @param rows the shard's rows of this step's global batch
   */
  static ShardStep prepare(
      WorkerContext ctx,
      TaskSettings settings,
      CapLossConfig loss,
      Broadcast<LinkedHashMap<String, HostTensor>> frozen,
      Shard shard,
      int[] rows,
      long step,
      long seed) {
    return new ShardStep(
        frozen == null ? Map.of() : ctx.frozen(frozen.id(), frozen.value()),
        loss == null ? null : ctx.bank(shard),
        MicroBatches.of(
            shard.examples(),
            rows,
            settings.microBatchSize(),
            settings.padTo(),
            settings.padId(),
            settings.regression()),
        new WorkerStep(
            new BertForSequenceClassification(settings.model()),
            loss == null ? null : new CapLoss(loss)),
        seed * 1_000_003L + step * 7919L + shard.partition());
  }
}
