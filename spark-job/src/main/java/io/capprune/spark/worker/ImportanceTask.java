package io.capprune.spark.worker;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.loss.CapLoss;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.structured.ImportanceScores;
import io.capprune.core.structured.MaskImportance;
import io.capprune.core.structured.UnitMasks;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import io.capprune.core.train.MicroBatches;
import io.capprune.spark.data.Shard;
import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.spark.broadcast.Broadcast;

/**
 * One partition's share of the structured importance pass: every row of the shard, in batches of
 * {@code batchSize}, through {@link MaskImportance}; the driver sums the partitions' scores (a
 * treeAggregate, like the gradient exchange), so the total is the sum over the training set.
 *
 * @param loss the objective; its contrastive flag says whether PrC/SnC/FiC enter the gradient
 * @param weights every parameter (the stored W, not W * M; the masks do the masking)
 */
public record ImportanceTask(
    TaskSettings settings,
    CapLossConfig loss,
    Broadcast<LinkedHashMap<String, HostTensor>> weights,
    UnitMasks masks,
    int batchSize,
    long seed)
    implements Serializable {

  public ImportanceScores run(Shard shard) {
    if (shard.size() == 0) {
      return ImportanceScores.zeros(masks.layers(), masks.headsPerLayer(), masks.neuronsPerLayer());
    }
    if (shard.bank() == null) {
      throw new IllegalStateException(
          "partition " + shard.partition() + " has no representation bank");
    }
    return WorkerRuntime.get()
        .exclusive(
            settings.useGpu(),
            device -> {
              WorkerContext ctx = WorkerContext.on(device, settings.threadsForTask());
              DjlRuntime.seed((int) (seed * 31 + shard.partition()));
              try (var m = ctx.manager().newSubManager()) {
                Map<String, NDArray> params =
                    NDArrays.toNDArrays(m, weights.value(), DataType.FLOAT32);
                var batches =
                    MicroBatches.of(
                        shard.examples(),
                        MicroBatches.allRows(shard.size()),
                        batchSize,
                        settings.padTo(),
                        settings.padId(),
                        settings.regression());
                return new MaskImportance(
                        new BertForSequenceClassification(settings.model()), new CapLoss(loss))
                    .accumulate(
                        m,
                        params,
                        masks,
                        batches,
                        shard.bank(),
                        seed * 1_000_003L + shard.partition(),
                        DataType.FLOAT32);
              }
            });
  }
}
