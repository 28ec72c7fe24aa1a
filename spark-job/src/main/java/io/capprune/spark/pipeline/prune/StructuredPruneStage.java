package io.capprune.spark.pipeline.prune;

import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.structured.ImportanceScores;
import io.capprune.core.structured.PruneSequence;
import io.capprune.core.structured.StructuredShrink;
import io.capprune.core.structured.UnitMasks;
import io.capprune.core.structured.UnitMasks.Unit;
import io.capprune.core.structured.UnitSelector;
import io.capprune.core.tensor.HostTensor;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.data.Shard;
import io.capprune.spark.io.SnapshotStore;
import io.capprune.spark.pipeline.OutputLayout;
import io.capprune.spark.pipeline.RunContext;
import io.capprune.spark.pipeline.Stage;
import io.capprune.spark.pipeline.TrainingSet;
import io.capprune.spark.pipeline.evaluate.DevScorer;
import io.capprune.spark.report.MetricsLog;
import io.capprune.spark.report.Plots;
import io.capprune.spark.report.StepRecord;
import io.capprune.spark.train.DistributedTrainer;
import io.capprune.spark.worker.ImportanceTask;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.broadcast.Broadcast;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Structured CAP (CAP-f, docs/structured.md) as the prune stage: for every step of the cumulative
 * sequence, the importance pass (every partition sums |dL/dmask| over its rows, Spark adds the
 * partitions up), the choice of the next heads and neurons, an SnC slice of the model before the
 * new masks, retraining for cap.structured.retrain-epochs with a fresh AdamW and LR schedule and
 * fixed masks, the dev metric, and a committed snapshot. A resumed run continues after the last
 * committed step (a step interrupted mid-retraining is redone from its start).
 *
 * <p>Snapshots are named by the cumulative optimizer step; their state.json carries the {@code
 * structured} entry (step of the sequence, pruned heads and neurons per layer, dev metric).
 */
public final class StructuredPruneStage implements Stage<Void> {
  /**
   * The logger of this stage's own lines, under the name of the class the stage was before it moved
   * here (issue 22): the console pattern prints the name's last part.
   */
  private static final Logger LOG =
      LoggerFactory.getLogger("io.capprune.spark.pipeline.StructuredPrune");

  @Override
  public String name() {
    return "prune";
  }

  @Override
  public Optional<String> completeOutput(RunContext run) {
    return PruneStage.finished(run);
  }

  @Override
  public Void run(RunContext run) {
    JobConfig config = run.config();
    JobConfig.PruneSettings ps = config.prune();
    JobConfig.StructuredSettings st = config.structured();
    BertConfig mc = run.core().student();
    PruneSequence seq = run.core().structuredSequence();
    HfCheckpoint teacher = run.teacher().read();
    CapLossConfig loss = run.core().loss();
    boolean snc = loss.contrastive() && loss.uses(Kind.SNAP);
    SnapshotStore snapshots = run.snapshots();
    List<SnapshotStore.Snapshot> earlier = snapshots.committed();
    if (!earlier.isEmpty() && !config.resume()) {
      throw new IllegalStateException(
          snapshots.root()
              + " holds snapshots of an earlier run;"
              + " pass --resume to continue it or --overwrite to start again");
    }
    LinkedHashMap<String, HostTensor> pre = run.studentInit();
    LinkedHashMap<String, HostTensor> weights;
    UnitMasks masks;
    int start;
    long optimizerSteps;
    if (config.resume() && !earlier.isEmpty()) {
      SnapshotStore.Snapshot last = earlier.get(earlier.size() - 1);
      start = structuredStep(last);
      masks = masksOf(mc, last);
      weights = new LinkedHashMap<>(snapshots.read(last).weights());
      optimizerSteps = last.step();
      LOG.info(
          "prune: resuming the structured sequence after step {} of {} (snapshot {}): {}",
          start,
          seq.steps(),
          last.dir(),
          masks);
    } else {
      start = 0;
      masks = UnitMasks.allKept(mc);
      weights = run.studentInit();
      optimizerSteps = 0;
    }
    TrainingSet train = run.data().train();
    long n = train.size();
    DistributedTrainer.Plan probe = plan(run, n, 0);
    LOG.info(
        "prune: method {}, {} examples, {} structured steps of {} epochs x {} steps,"
            + " heads {} neurons {}",
        ps.method().configName(),
        n,
        seq.steps(),
        st.retrainEpochs(),
        probe.stepsPerEpoch(),
        st.headFractions(),
        st.neuronFractions());

    JavaRDD<Shard> shards = RepresentationBanks.build(run, train, teacher, pre, loss);
    if (snc) {
      // The SnC slices the interrupted run had taken: before the masks of steps 1 .. start-1,
      // i.e. of the models after steps 1 .. start-1.
      for (SnapshotStore.Snapshot s : earlier) {
        int done = structuredStep(s);
        if (done >= 1 && done < start) {
          shards = snapshotSlice(run, shards, snapshots.effectiveWeights(s));
        }
      }
    }
    DevScorer scorer = new DevScorer(run);
    int totalHeads = masks.total(Unit.HEAD);
    int totalNeurons = masks.total(Unit.NEURON);
    for (int s = start; s < seq.steps(); s++) {
      long t0 = System.nanoTime();
      // Contrastive terms enter the importance once the SnC bank has a slice (from step 1), as
      // in the reference; CE + KD before.
      CapLossConfig importanceLoss = loss.withContrastive(loss.contrastive() && s >= 1);
      ImportanceScores scores = importance(run, shards, weights, masks, importanceLoss, s);
      if (scores.examples() != n) {
        throw new IllegalStateException(
            "structured step "
                + (s + 1)
                + ": the importance pass saw "
                + scores.examples()
                + " of "
                + n
                + " examples");
      }
      if (st.normalizeByLayer()) {
        scores = scores.normalizedPerLayer();
      }
      UnitMasks next =
          UnitSelector.select(
              scores,
              masks,
              seq.headsPrunedAfter(s, totalHeads),
              seq.neuronsPrunedAfter(s, totalNeurons));
      if (snc && s >= 1) {
        // The snapshot slice of the model before the new masks (step 0 contrasts with PrC/FiC
        // only).
        shards = snapshotSlice(run, shards, masks.maskedWeights(mc, weights));
      }
      masks = next;
      LOG.info(
          "prune: structured step {}/{}: importance in {} s; keeping {}",
          s + 1,
          seq.steps(),
          String.format("%.1f", (System.nanoTime() - t0) / 1e9),
          masks);

      DistributedTrainer.Plan plan = plan(run, n, s);
      long total = plan.totalSteps();
      DriverUpdate update = run.core().structuredRetrainUpdate(total);
      TrainingState state = update.initialState(weights);
      masks
          .weightMasks(mc)
          .forEach(
              (name, m) ->
                  System.arraycopy(m.data(), 0, state.masks().get(name).data(), 0, m.numel()));
      DistributedTrainer trainer = run.trainer(loss, update);
      try (MetricsLog log =
          MetricsLog.create(
              run.storage().fs(run.out().root()),
              run.resolve(OutputLayout.STRUCTURED_DIR + "/step-" + (s + 1)),
              20)) {
        trainer.train(shards, state, plan, null, log);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      weights = new LinkedHashMap<>(state.weights());
      Map<String, Double> dev = scorer.score(state.effectiveWeights());
      optimizerSteps += total;
      writeSnapshot(
          run,
          snapshots,
          state,
          masks,
          s + 1,
          seq.steps(),
          optimizerSteps,
          (int) ((s + 1L) * st.retrainEpochs()),
          dev);
      LOG.info(
          "prune: structured step {}/{} done: heads kept {}/{}, neurons kept {}/{}, dev {}",
          s + 1,
          seq.steps(),
          masks.totalKept(Unit.HEAD),
          totalHeads,
          masks.totalKept(Unit.NEURON),
          totalNeurons,
          dev);
    }
    writeSummary(run, snapshots);
    writeCombinedLog(run, snapshots);
    run.storage()
        .writeString(run.resolve(OutputLayout.FINAL_MARKER), "step " + optimizerSteps + "\n", true);
    return null;
  }

  /**
   * A structured SnC slice: the model's vectors encoded in eval mode (no dropout), as the
   * reference's structured runs do (docs/structured.md); unstructured snapshots use train mode.
   */
  public static JavaRDD<Shard> snapshotSlice(
      RunContext run, JavaRDD<Shard> shards, LinkedHashMap<String, HostTensor> weights) {
    return RepresentationBanks.withSnapshotSlice(run, shards, weights, false);
  }

  private static DistributedTrainer.Plan plan(RunContext run, long n, int s) {
    JobConfig config = run.config();
    // Its own seed per step: each retraining phase sees its own shuffles.
    return new DistributedTrainer.Plan(
        "structured step " + (s + 1),
        config.structured().retrainEpochs(),
        config.prune().batchSize(),
        n,
        config.seed() + 1000L * s,
        config.logEverySteps(),
        config.spark().aggregateDepth());
  }

  private static ImportanceScores importance(
      RunContext run,
      JavaRDD<Shard> shards,
      LinkedHashMap<String, HostTensor> weights,
      UnitMasks masks,
      CapLossConfig loss,
      int s) {
    JobConfig config = run.config();
    Broadcast<LinkedHashMap<String, HostTensor>> w =
        run.sc().broadcast(new LinkedHashMap<>(weights));
    ImportanceTask task =
        new ImportanceTask(
            run.core().worker(),
            loss,
            w,
            masks,
            config.structured().importanceBatchSize(),
            config.seed() + 7919L * (s + 1));
    run.sc().setJobDescription("structured step " + (s + 1) + ": importance of heads and neurons");
    ImportanceScores zero =
        ImportanceScores.zeros(masks.layers(), masks.headsPerLayer(), masks.neuronsPerLayer());
    ImportanceScores sum =
        shards.treeAggregate(
            zero,
            (acc, shard) -> acc.plus(task.run(shard)),
            ImportanceScores::plus,
            config.spark().aggregateDepth());
    w.destroy(true); // blocking: see GradientExchange (a racing removal logs WARNs)
    return sum;
  }

  private static void writeSnapshot(
      RunContext run,
      SnapshotStore store,
      TrainingState trained,
      UnitMasks masks,
      int done,
      int steps,
      long optimizerSteps,
      int epoch,
      Map<String, Double> dev) {
    // Named by the cumulative optimizer step so the snapshots of successive phases sort in order.
    TrainingState named =
        new TrainingState(
            new LinkedHashMap<>(trained.weights()),
            trained.frozen(),
            new LinkedHashMap<>(trained.scores()),
            new LinkedHashMap<>(trained.masks()),
            new LinkedHashMap<>(trained.expAvg()),
            new LinkedHashMap<>(trained.expAvgSq()),
            optimizerSteps);
    Map<String, Object> structured = new LinkedHashMap<>();
    structured.put("step", done);
    structured.put("steps", steps);
    structured.put("pruned_heads", stringKeys(masks.pruned(Unit.HEAD)));
    structured.put("pruned_neurons", stringKeys(masks.pruned(Unit.NEURON)));
    List<Integer> heads = new ArrayList<>();
    List<Integer> neurons = new ArrayList<>();
    for (int l = 0; l < masks.layers(); l++) {
      heads.add(masks.kept(Unit.HEAD, l));
      neurons.add(masks.kept(Unit.NEURON, l));
    }
    structured.put("heads_kept", heads);
    structured.put("neurons_kept", neurons);
    Map<String, Object> extra = new LinkedHashMap<>();
    extra.put("dev", dev);
    extra.put("seed", run.config().seed());
    extra.put("final", done == steps);
    extra.put("structured", structured);
    extra.put("config", run.config().rendered());
    store.write(named, epoch, extra);
  }

  /** structured.json: heads, neurons kept and the dev metric after every committed step. */
  private static void writeSummary(RunContext run, SnapshotStore store) {
    List<Map<String, Object>> rows = new ArrayList<>();
    for (SnapshotStore.Snapshot s : store.committed()) {
      Object st = s.state().get("structured");
      if (st instanceof Map<?, ?> m) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("step", m.get("step"));
        row.put("heads_kept", m.get("heads_kept"));
        row.put("neurons_kept", m.get("neurons_kept"));
        row.put("dev", s.state().get("dev"));
        rows.add(row);
      }
    }
    run.writeJson(run.resolve(OutputLayout.STRUCTURED_JSON), Map.of("steps", rows));
  }

  /**
   * metrics.jsonl and the plots of the whole run: every phase's records renumbered into one
   * sequence of optimizer steps (as the snapshots are named), with the dev metric of each step on
   * its phase's last record, so that the summary, the plots and {@code compare} read a structured
   * run like any other. Rebuilt from the per-step logs, so a resumed run writes it complete.
   */
  private static void writeCombinedLog(RunContext run, SnapshotStore store) {
    List<StepRecord> all = new ArrayList<>();
    long offset = 0;
    int epochOffset = 0;
    double seconds = 0;
    List<SnapshotStore.Snapshot> committed = store.committed();
    long total = committed.isEmpty() ? 1 : committed.get(committed.size() - 1).step();
    try {
      for (SnapshotStore.Snapshot s : committed) {
        int done = structuredStep(s);
        Path file =
            new Path(
                run.resolve(OutputLayout.STRUCTURED_DIR + "/step-" + done), MetricsLog.FILE_NAME);
        List<StepRecord> phase =
            run.storage().exists(file) ? MetricsLog.read(run.storage().fs(file), file) : List.of();
        Map<String, Double> dev = RunContext.doubles(s.state().get("dev"));
        for (int i = 0; i < phase.size(); i++) {
          StepRecord r = phase.get(i);
          all.add(
              new StepRecord(
                  offset + r.step(),
                  Math.max(total, offset + r.step()),
                  epochOffset + r.epoch(),
                  r.loss(),
                  r.ce(),
                  r.kd(),
                  r.prc(),
                  r.snc(),
                  r.fic(),
                  r.regulariser(),
                  r.sparsity(),
                  r.threshold(),
                  r.learningRate(),
                  r.gradNorm(),
                  r.examplesPerSecond(),
                  seconds + r.secondsElapsed(),
                  r.secondsLeft(),
                  i == phase.size() - 1 ? dev : r.dev()));
        }
        if (!phase.isEmpty()) {
          seconds += phase.get(phase.size() - 1).secondsElapsed();
          epochOffset += phase.get(phase.size() - 1).epoch();
        }
        offset = s.step();
      }
      FileSystem fs = run.storage().fs(run.out().root());
      try (MetricsLog log = MetricsLog.create(fs, run.out().root(), Integer.MAX_VALUE)) {
        for (StepRecord r : all) {
          log.append(r);
        }
      }
      if (!all.isEmpty()) {
        Plots.writeAll(all, fs, run.resolve(OutputLayout.PLOTS_DIR));
      }
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot write the structured run's metrics.jsonl: " + e.getMessage(), e);
    }
  }

  private static Map<String, List<Integer>> stringKeys(Map<Integer, List<Integer>> m) {
    Map<String, List<Integer>> out = new TreeMap<>();
    m.forEach((k, v) -> out.put(Integer.toString(k), v));
    return out;
  }

  /** The step of the structured sequence a snapshot recorded; refuses other runs' snapshots. */
  static int structuredStep(SnapshotStore.Snapshot s) {
    Object st = s.state().get("structured");
    if (!(st instanceof Map<?, ?> m) || !(m.get("step") instanceof Number step)) {
      throw new IllegalStateException(
          "snapshot "
              + s.dir()
              + " was not written by a structured run"
              + " (no 'structured' entry in state.json); resume it with its own method or pass"
              + " --overwrite");
    }
    return step.intValue();
  }

  /** The unit masks a structured snapshot recorded. */
  static UnitMasks masksOf(BertConfig c, SnapshotStore.Snapshot s) {
    structuredStep(s);
    Map<?, ?> st = (Map<?, ?>) s.state().get("structured");
    return UnitMasks.of(
        c, intKeys(st.get("pruned_heads"), s), intKeys(st.get("pruned_neurons"), s));
  }

  private static Map<Integer, List<Integer>> intKeys(Object o, SnapshotStore.Snapshot s) {
    Map<Integer, List<Integer>> out = new TreeMap<>();
    if (!(o instanceof Map<?, ?> m)) {
      throw new IllegalStateException(
          "snapshot " + s.dir() + ": structured masks missing in state.json");
    }
    m.forEach(
        (k, v) -> {
          List<Integer> units = new ArrayList<>();
          for (Object u : (List<?>) v) {
            units.add(((Number) u).intValue());
          }
          out.put(Integer.parseInt(String.valueOf(k)), units);
        });
    return out;
  }

  /** The exported model of a structured run: the final snapshot's heads and neurons removed. */
  public static HfCheckpoint smallerModel(
      BertConfig c,
      LinkedHashMap<String, HostTensor> effective,
      SnapshotStore.Snapshot last,
      List<String> vocab,
      boolean padFfn) {
    StructuredShrink.Result r = StructuredShrink.shrink(c, effective, masksOf(c, last), padFfn);
    LOG.info(
        "export: heads and neurons removed, {} -> {} parameters",
        effective.values().stream().mapToLong(HostTensor::numel).sum(),
        r.parameters());
    return new HfCheckpoint("pruned", r.config(), r.weights(), vocab);
  }
}
