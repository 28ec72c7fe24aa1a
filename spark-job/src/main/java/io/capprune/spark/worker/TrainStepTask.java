package io.capprune.spark.worker;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.exchange.MaskSet;
import io.capprune.core.exchange.PackedWeights;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.tensor.FlatParameters;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.ParameterLayout;
import io.capprune.core.train.WorkerStep;
import io.capprune.spark.data.Shard;
import io.capprune.spark.train.GradientBuffer;
import java.io.Serializable;
import java.util.LinkedHashMap;
import org.apache.spark.broadcast.Broadcast;

/**
 * One training step on one partition: the rows of the global batch this shard holds, in
 * micro-batches, through {@link WorkerStep}. The weights go from the broadcast's packed stream to
 * the device in one copy ({@link io.capprune.core.exchange.DeviceWeights}), the shard's bank stays
 * on the device between steps, and the gradients come back flat in {@code layout} order, already in
 * the exchange's precision.
 *
 * @param loss the CAP objective; null = task loss only (teacher fine-tuning)
 * @param trainable this step's effective weights (W * M), published by the driver: of masked
 *     matrices only the kept entries, in the precision of the exchange (gradients go back in it
 *     too)
 * @param masks the masks the weights were packed against, broadcast only when they change
 * @param frozen parameters without gradient, broadcast once per stage; may be null
 * @param batch global indices of the whole global batch
 */
public record TrainStepTask(
    TaskSettings settings,
    CapLossConfig loss,
    Broadcast<PackedWeights> trainable,
    Broadcast<MaskSet> masks,
    Broadcast<LinkedHashMap<String, HostTensor>> frozen,
    long[] batch,
    long step,
    long seed,
    ParameterLayout layout)
    implements Serializable {

  public GradientBuffer run(Shard shard) {
    int[] rows = shard.rowsOf(batch);
    if (rows.length == 0) {
      return GradientBuffer.empty();
    }
    ShardStep.checkBank(loss, shard);
    return WorkerRuntime.get()
        .exclusive(
            settings.useGpu(),
            device -> {
              long t0 = System.nanoTime();
              WorkerContext ctx = WorkerContext.on(device, settings.threadsForTask());
              ShardStep in =
                  ShardStep.prepare(ctx, settings, loss, frozen, shard, rows, step, seed);
              PackedWeights packed = trainable.value();
              if (!packed.names().equals(layout.names())) {
                throw new IllegalStateException(
                    "the weights are packed in another order than the gradient"
                        + " layout: "
                        + packed.names()
                        + " vs "
                        + layout.names());
              }
              try (NDManager scope = ctx.manager().newSubManager()) {
                FlatParameters weights = ctx.weights().unpack(packed, masks.value(), scope);
                WorkerStep.Result r =
                    in.worker()
                        .run(
                            scope,
                            in.frozen(),
                            weights,
                            in.microBatches(),
                            in.bank(),
                            batch.length,
                            in.partitionSeed(),
                            DataType.FLOAT32,
                            packed.precision());
                return GradientBuffer.of(r, (System.nanoTime() - t0) / 1e9);
              }
            });
  }
}
