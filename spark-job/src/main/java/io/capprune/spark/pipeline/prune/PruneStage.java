package io.capprune.spark.pipeline.prune;

import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.HostTensor;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.config.Preflight;
import io.capprune.spark.data.Shard;
import io.capprune.spark.io.SnapshotStore;
import io.capprune.spark.pipeline.OutputLayout;
import io.capprune.spark.pipeline.RunContext;
import io.capprune.spark.pipeline.Stage;
import io.capprune.spark.pipeline.TrainingSet;
import io.capprune.spark.pipeline.evaluate.DevScorer;
import io.capprune.spark.report.MetricsLog;
import io.capprune.spark.report.Plots;
import io.capprune.spark.train.DistributedTrainer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaRDD;

/**
 * Unstructured pruning with cap.prune.method (CAP or a baseline) from the pre-trained model,
 * distilling from the teacher: the banks first, then training with the masks following the sparsity
 * schedule, and at every snapshot epoch the dev metric and a committed snapshot (an interrupted run
 * resumes from the last one). Writes {@code _PRUNED} when done.
 */
public final class PruneStage implements Stage<Void> {

  @Override
  public String name() {
    return "prune";
  }

  @Override
  public Optional<String> completeOutput(RunContext run) {
    return finished(run);
  }

  /** The prune stage's output is complete once {@code _PRUNED} exists (structured runs too). */
  static Optional<String> finished(RunContext run) {
    Path marker = run.resolve(OutputLayout.FINAL_MARKER);
    return run.storage().exists(marker) ? Optional.of(marker + " exists") : Optional.empty();
  }

  @Override
  public Void run(RunContext run) {
    JobConfig config = run.config();
    JobConfig.PruneSettings p = config.prune();
    HfCheckpoint teacher = run.teacher().read();
    LinkedHashMap<String, HostTensor> init = run.studentInit();
    TrainingSet train = run.data().train();
    DistributedTrainer.Plan plan =
        new DistributedTrainer.Plan(
            "prune",
            p.epochs(),
            p.batchSize(),
            train.size(),
            config.seed(),
            config.logEverySteps(),
            config.spark().aggregateDepth());
    long total = plan.totalSteps();
    // Checked in validation already, before Spark; the same rule here for a pipeline built
    // otherwise.
    Preflight.checkSchedule(p, train.size());
    long warmup = Preflight.warmupSteps(p, total);
    boolean soft = run.core().softPruning();
    DriverUpdate update = run.core().pruneUpdate(total, warmup);
    CapLossConfig loss = run.core().loss();

    SnapshotStore snapshots = run.snapshots();
    TrainingState state;
    MetricsLog log;
    List<SnapshotStore.Snapshot> earlier = snapshots.committed();
    if (!earlier.isEmpty() && !config.resume()) {
      throw new IllegalStateException(
          snapshots.root()
              + " holds snapshots of an earlier run;"
              + " pass --resume to continue it or --overwrite to start again");
    }
    try {
      if (config.resume() && !earlier.isEmpty()) {
        SnapshotStore.Snapshot last = earlier.get(earlier.size() - 1);
        run.log()
            .info(
                "prune: resuming from snapshot {} (step {}, epoch {})",
                last.dir(),
                last.step(),
                last.epoch());
        state = snapshots.read(last);
        log =
            MetricsLog.resume(
                run.storage().fs(run.out().root()), run.out().root(), 20, last.step());
      } else {
        // Its own copy: the PrC bank below is encoded from init, which must not see training.
        state = update.initialState(run.studentInit());
        log = MetricsLog.create(run.storage().fs(run.out().root()), run.out().root(), 20);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    run.log()
        .info(
            "prune: method {}, {} examples, {} epochs x {} steps, batch {},"
                + " warm-up {} steps, target {}",
            p.method().configName(),
            train.size(),
            p.epochs(),
            plan.stepsPerEpoch(),
            p.batchSize(),
            warmup,
            soft ? "lambda " + p.finalLambda() : "keep " + p.finalThreshold());

    JavaRDD<Shard> shards = RepresentationBanks.build(run, train, teacher, init, loss);
    boolean snc = loss.uses(Kind.SNAP) && loss.contrastive();
    // SnC slices of the snapshots before the resume point (the resumed epoch adds its own).
    if (snc) {
      for (SnapshotStore.Snapshot s : earlier) {
        if (config.resume() && s.step() < state.step() && s.epoch() >= 1) {
          shards =
              RepresentationBanks.withSnapshotSlice(
                  run, shards, snapshots.effectiveWeights(s), true);
        }
      }
    }
    DevScorer scorer = new DevScorer(run);
    DistributedTrainer trainer = run.trainer(loss, update);
    DistributedTrainer.EpochHook hook =
        (epoch, st, current) -> {
          JavaRDD<Shard> next = current;
          Map<String, Double> dev = null;
          if (epoch >= 1 && epoch % p.snapshotEveryEpochs() == 0 || epoch == p.epochs()) {
            dev = scorer.score(st.effectiveWeights());
            Map<String, Object> extra = new LinkedHashMap<>();
            extra.put("dev", dev);
            extra.put("seed", config.seed());
            extra.put("total_steps", total);
            extra.put("final", epoch == p.epochs());
            extra.put("config", config.rendered());
            snapshots.write(st, epoch, extra);
            run.log()
                .info(
                    "prune: epoch {} of {}: sparsity {}, dev {}",
                    epoch,
                    p.epochs(),
                    String.format("%.2f%%", 100 * st.sparsity().sparsity()),
                    dev);
          }
          if (epoch >= 1 && epoch < p.epochs() && snc) {
            next = RepresentationBanks.withSnapshotSlice(run, current, st.effectiveWeights(), true);
          }
          return new DistributedTrainer.EpochHook.Outcome(next, dev);
        };
    trainer.train(shards, state, plan, hook, log);
    try {
      log.close();
      Plots.writeAll(
          log.records(), run.storage().fs(run.out().root()), run.resolve(OutputLayout.PLOTS_DIR));
      run.storage()
          .writeString(run.resolve(OutputLayout.FINAL_MARKER), "step " + state.step() + "\n", true);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    run.log()
        .info(
            "prune: done, {} steps, sparsity {}",
            state.step(),
            String.format("%.2f%%", 100 * state.sparsity().sparsity()));
    return null;
  }
}
