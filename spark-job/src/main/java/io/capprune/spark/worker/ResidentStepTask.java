package io.capprune.spark.worker;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.LossTerms;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.prune.PruningConfig;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.prune.UpdateSummary;
import io.capprune.core.tensor.FlatParameters;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.train.WorkerStep;
import io.capprune.spark.data.Shard;
import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.List;
import org.apache.spark.SparkEnv;
import org.apache.spark.broadcast.Broadcast;

/**
 * One training step where the executor keeps the state ({@code cap.spark.update-on = executor}):
 * the worker computes with W * M straight from the state on its device, and the update (clipping,
 * AdamW, scores, masks) runs there on the gradient it just accumulated. Nothing of size crosses the
 * network or the PCIe bus: no weights down, no gradient up, no copy to the heap; the task returns
 * the loss terms and the update's summary.
 *
 * <p>The state comes from the driver's last publication ({@code published}, read only when this
 * executor does not hold it yet: the first step, and the first after an epoch boundary where the
 * driver took the state back). A step on a state at another step fails, naming both: the executor
 * that held the state was lost (the new one starts from the publication) and the run continues from
 * its last snapshot with {@code --resume}.
 *
 * @param published the state as the driver last published it
 * @param frozen parameters without gradient, broadcast once per stage; may be null
 * @param batch global indices of the whole global batch
 */
public record ResidentStepTask(
    TaskSettings settings,
    CapLossConfig loss,
    PruningConfig pruning,
    OptimizerConfig optimizer,
    Broadcast<TrainingState> published,
    Broadcast<LinkedHashMap<String, HostTensor>> frozen,
    long[] batch,
    long step,
    long seed)
    implements Serializable {

  /** Which publication an executor's state comes from; broadcast ids restart with a context. */
  static Object keyOf(Broadcast<TrainingState> published) {
    return List.of(System.identityHashCode(SparkEnv.get()), published.id());
  }

  public ResidentStepResult run(Shard shard) {
    int[] rows = shard.rowsOf(batch);
    ShardStep.checkBank(loss, shard);
    return WorkerRuntime.get()
        .exclusive(
            settings.useGpu(),
            device -> {
              long t0 = System.nanoTime();
              WorkerContext ctx = WorkerContext.on(device, settings.threadsForTask());
              ResidentTraining r =
                  ctx.resident(keyOf(published), pruning, optimizer, published::value);
              ResidentStepResult replay = r.replayOf(step);
              if (replay != null) {
                return replay;
              }
              if (r.state.step() != step) {
                throw new IllegalStateException(
                    "step "
                        + step
                        + ": this executor's training state is at step "
                        + r.state.step()
                        + " (the executor that kept it was lost or replaced, or the driver"
                        + " published no state since); continue the run from its last snapshot"
                        + " with --resume");
              }
              ShardStep in =
                  ShardStep.prepare(ctx, settings, loss, frozen, shard, rows, step, seed);
              ResidentStepResult result;
              try (NDManager scope = ctx.manager().newSubManager()) {
                FlatParameters weights = r.update.effectiveWeights(r.state, scope);
                WorkerStep.Accumulated a =
                    in.worker()
                        .accumulate(
                            scope,
                            in.frozen(),
                            weights,
                            in.microBatches(),
                            in.bank(),
                            batch.length,
                            in.partitionSeed(),
                            DataType.FLOAT32);
                // one read of 48 bytes: the passes are done, the update's time starts here
                LossTerms terms = LossTerms.of(a.terms().toDoubleArray());
                long t1 = System.nanoTime();
                UpdateSummary summary = r.update.apply(r.state, a.gradient());
                long t2 = System.nanoTime();
                result =
                    new ResidentStepResult(
                        step, terms, a.examples(), summary, (t1 - t0) / 1e9, (t2 - t1) / 1e9);
              }
              r.stepped(result);
              return result;
            });
  }
}
