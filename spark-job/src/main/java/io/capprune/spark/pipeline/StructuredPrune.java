package io.capprune.spark.pipeline;

import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.optim.LinearWarmupDecay;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.PruningConfig;
import io.capprune.core.prune.PruningCriterion;
import io.capprune.core.prune.SparsitySchedule;
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
import java.util.TreeMap;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.broadcast.Broadcast;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Structured CAP (CAP-f, cap-reference 3.6) as the prune stage: for every step of the cumulative
 * sequence, the importance pass (every partition sums |dL/dmask| over its rows, Spark adds the
 * partitions up), the choice of the next heads and neurons, an SnC slice of the model before the
 * new masks, retraining for cap.structured.retrain-epochs with a fresh AdamW and LR schedule and
 * fixed masks, the dev metric, and a committed snapshot. A resumed run continues after the last
 * committed step (a step interrupted mid-retraining is redone from its start).
 *
 * <p>Snapshots are named by the cumulative optimizer step; their state.json carries the
 * {@code structured} entry (step of the sequence, pruned heads and neurons per layer, dev metric).
 */
final class StructuredPrune {
  private static final Logger LOG = LoggerFactory.getLogger(StructuredPrune.class);
  static final String STRUCTURED_DIR = "structured";

  private final CapPipeline p;

  StructuredPrune(CapPipeline pipeline) {
    this.p = pipeline;
  }

  void run() {
    JobConfig config = p.config;
    JobConfig.PruneSettings ps = config.prune();
    JobConfig.StructuredSettings st = config.structured();
    BertConfig mc = p.modelConfig;
    PruneSequence seq = new PruneSequence(st.headFractions(), st.neuronFractions());
    HfCheckpoint teacher = p.readTeacher();
    CapLossConfig loss = p.lossConfig();
    boolean snc = loss.contrastive() && loss.uses(Kind.SNAP);
    SnapshotStore snapshots = new SnapshotStore(p.storage, p.out.resolve(CapPipeline.SNAPSHOTS_DIR));
    List<SnapshotStore.Snapshot> earlier = snapshots.committed();
    if (!earlier.isEmpty() && !config.resume()) {
      throw new IllegalStateException(snapshots.root() + " holds snapshots of an earlier run;"
          + " pass --resume to continue it or --overwrite to start again");
    }
    LinkedHashMap<String, HostTensor> pre = p.studentInit();
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
      LOG.info("prune: resuming the structured sequence after step {} of {} (snapshot {}): {}", start,
          seq.steps(), last.dir(), masks);
    } else {
      start = 0;
      masks = UnitMasks.allKept(mc);
      weights = p.studentInit();
      optimizerSteps = 0;
    }
    long n = p.trainSize();
    DistributedTrainer.Plan probe = plan(st, ps, n, 0);
    LOG.info("prune: method {}, {} examples, {} structured steps of {} epochs x {} steps, heads {} neurons {}",
        ps.method().configName(), n, seq.steps(), st.retrainEpochs(), probe.stepsPerEpoch(),
        st.headFractions(), st.neuronFractions());

    JavaRDD<Shard> shards = p.withBanks(p.trainShards(), teacher, pre, loss);
    if (snc) {
      // The SnC slices the interrupted run had taken: before the masks of steps 1 .. start-1,
      // i.e. of the models after steps 1 .. start-1.
      for (SnapshotStore.Snapshot s : earlier) {
        int done = structuredStep(s);
        if (done >= 1 && done < start) {
          shards = snapshotSlice(p, shards, snapshots.effectiveWeights(s));
        }
      }
    }
    int totalHeads = masks.total(Unit.HEAD);
    int totalNeurons = masks.total(Unit.NEURON);
    for (int s = start; s < seq.steps(); s++) {
      long t0 = System.nanoTime();
      // Contrastive terms enter the importance once the SnC bank has a slice (from step 1), as in
      // the reference; CE + KD before.
      CapLossConfig importanceLoss = loss.withContrastive(loss.contrastive() && s >= 1);
      ImportanceScores scores = importance(shards, weights, masks, importanceLoss, st, s);
      if (scores.examples() != n) {
        throw new IllegalStateException("structured step " + (s + 1) + ": the importance pass saw "
            + scores.examples() + " of " + n + " examples");
      }
      if (st.normalizeByLayer()) {
        scores = scores.normalizedPerLayer();
      }
      UnitMasks next = UnitSelector.select(scores, masks, seq.headsPrunedAfter(s, totalHeads),
          seq.neuronsPrunedAfter(s, totalNeurons));
      if (snc && s >= 1) {
        // The snapshot slice of the model before the new masks (step 0 contrasts with PrC/FiC only).
        shards = snapshotSlice(p, shards, masks.maskedWeights(mc, weights));
      }
      masks = next;
      LOG.info("prune: structured step {}/{}: importance in {} s; keeping {}", s + 1, seq.steps(),
          String.format("%.1f", (System.nanoTime() - t0) / 1e9), masks);

      DistributedTrainer.Plan plan = plan(st, ps, n, s);
      long total = plan.totalSteps();
      OptimizerConfig opt = new OptimizerConfig(ps.learningRate(), ps.learningRate(), ps.weightDecay(),
          0.9, 0.999, ps.adamEpsilon(), ps.maxGradNorm(),
          LinearWarmupDecay.withWarmupRatio(st.warmupRatio(), total));
      PruningConfig fixed = new PruningConfig(PruningCriterion.FIXED, SparsitySchedule.constant(1.0, total),
          false, 0, st.freezeEmbeddings(), 0);
      DriverUpdate update = new DriverUpdate(fixed, opt);
      TrainingState state = update.initialState(weights);
      masks.weightMasks(mc).forEach((name, m) ->
          System.arraycopy(m.data(), 0, state.masks().get(name).data(), 0, m.numel()));
      DistributedTrainer trainer = new DistributedTrainer(p.sc, p.workerSettings(), loss, update,
          p.exchangePrecision());
      try (MetricsLog log = MetricsLog.create(p.storage.fs(p.out.root()),
          p.out.resolve(STRUCTURED_DIR + "/step-" + (s + 1)), 20)) {
        trainer.train(shards, state, plan, null, log);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      weights = new LinkedHashMap<>(state.weights());
      Map<String, Double> dev = p.evaluateWeights(state.effectiveWeights());
      optimizerSteps += total;
      writeSnapshot(snapshots, state, masks, s + 1, seq.steps(), optimizerSteps, (int) ((s + 1L) * st.retrainEpochs()), dev);
      LOG.info("prune: structured step {}/{} done: heads kept {}/{}, neurons kept {}/{}, dev {}", s + 1,
          seq.steps(), masks.totalKept(Unit.HEAD), totalHeads, masks.totalKept(Unit.NEURON), totalNeurons, dev);
    }
    writeSummary(snapshots);
    writeCombinedLog(snapshots);
    p.storage.writeString(p.out.resolve(CapPipeline.FINAL_MARKER), "step " + optimizerSteps + "\n", true);
  }

  /**
   * A structured SnC slice: the model's vectors encoded in eval mode (no dropout), as the
   * reference's structured runs do (cap-reference 1.2); unstructured snapshots use train mode.
   */
  static JavaRDD<Shard> snapshotSlice(CapPipeline p, JavaRDD<Shard> shards,
      LinkedHashMap<String, HostTensor> weights) {
    return p.withSnapshotSlice(shards, weights, false);
  }

  private DistributedTrainer.Plan plan(JobConfig.StructuredSettings st, JobConfig.PruneSettings ps, long n, int s) {
    // Its own seed per step: each retraining phase sees its own shuffles.
    return new DistributedTrainer.Plan("structured step " + (s + 1), st.retrainEpochs(), ps.batchSize(), n,
        p.config.seed() + 1000L * s, p.config.logEverySteps(), p.config.spark().aggregateDepth());
  }

  private ImportanceScores importance(JavaRDD<Shard> shards, LinkedHashMap<String, HostTensor> weights,
      UnitMasks masks, CapLossConfig loss, JobConfig.StructuredSettings st, int s) {
    Broadcast<LinkedHashMap<String, HostTensor>> w = p.sc.broadcast(new LinkedHashMap<>(weights));
    ImportanceTask task = new ImportanceTask(p.workerSettings(), loss, w, masks, st.importanceBatchSize(),
        p.config.seed() + 7919L * (s + 1));
    p.sc.setJobDescription("structured step " + (s + 1) + ": importance of heads and neurons");
    ImportanceScores zero = ImportanceScores.zeros(masks.layers(), masks.headsPerLayer(), masks.neuronsPerLayer());
    ImportanceScores sum = shards.treeAggregate(zero, (acc, shard) -> acc.plus(task.run(shard)),
        ImportanceScores::plus, p.config.spark().aggregateDepth());
    w.destroy();
    return sum;
  }

  private void writeSnapshot(SnapshotStore store, TrainingState trained, UnitMasks masks, int done,
      int steps, long optimizerSteps, int epoch, Map<String, Double> dev) {
    // Named by the cumulative optimizer step so the snapshots of successive phases sort in order.
    TrainingState named = new TrainingState(new LinkedHashMap<>(trained.weights()), trained.frozen(),
        new LinkedHashMap<>(trained.scores()), new LinkedHashMap<>(trained.masks()),
        new LinkedHashMap<>(trained.expAvg()), new LinkedHashMap<>(trained.expAvgSq()), optimizerSteps);
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
    extra.put("seed", p.config.seed());
    extra.put("final", done == steps);
    extra.put("structured", structured);
    extra.put("config", p.config.rendered());
    store.write(named, epoch, extra);
  }

  /** structured.json: heads, neurons kept and the dev metric after every committed step. */
  private void writeSummary(SnapshotStore store) {
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
    p.writeJson(p.out.resolve("structured.json"), Map.of("steps", rows));
  }

  /**
   * metrics.jsonl and the plots of the whole run: every phase's records renumbered into one
   * sequence of optimizer steps (as the snapshots are named), with the dev metric of each step on
   * its phase's last record, so that the summary, the plots and {@code compare} read a structured
   * run like any other. Rebuilt from the per-step logs, so a resumed run writes it complete.
   */
  private void writeCombinedLog(SnapshotStore store) {
    List<StepRecord> all = new ArrayList<>();
    long offset = 0;
    int epochOffset = 0;
    double seconds = 0;
    List<SnapshotStore.Snapshot> committed = store.committed();
    long total = committed.isEmpty() ? 1 : committed.get(committed.size() - 1).step();
    try {
      for (SnapshotStore.Snapshot s : committed) {
        int done = structuredStep(s);
        org.apache.hadoop.fs.Path file = new org.apache.hadoop.fs.Path(
            p.out.resolve(STRUCTURED_DIR + "/step-" + done), MetricsLog.FILE_NAME);
        List<StepRecord> phase = p.storage.exists(file) ? MetricsLog.read(p.storage.fs(file), file) : List.of();
        Map<String, Double> dev = doubles(s.state().get("dev"));
        for (int i = 0; i < phase.size(); i++) {
          StepRecord r = phase.get(i);
          all.add(new StepRecord(offset + r.step(), Math.max(total, offset + r.step()), epochOffset + r.epoch(),
              r.loss(), r.ce(), r.kd(), r.prc(), r.snc(), r.fic(), r.regulariser(), r.sparsity(),
              r.threshold(), r.learningRate(), r.gradNorm(), r.examplesPerSecond(),
              seconds + r.secondsElapsed(), r.secondsLeft(), i == phase.size() - 1 ? dev : r.dev()));
        }
        if (!phase.isEmpty()) {
          seconds += phase.get(phase.size() - 1).secondsElapsed();
          epochOffset += phase.get(phase.size() - 1).epoch();
        }
        offset = s.step();
      }
      org.apache.hadoop.fs.FileSystem fs = p.storage.fs(p.out.root());
      try (MetricsLog log = MetricsLog.create(fs, p.out.root(), Integer.MAX_VALUE)) {
        for (StepRecord r : all) {
          log.append(r);
        }
      }
      if (!all.isEmpty()) {
        Plots.writeAll(all, fs, p.out.resolve(CapPipeline.PLOTS_DIR));
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the structured run's metrics.jsonl: " + e.getMessage(), e);
    }
  }

  private static Map<String, Double> doubles(Object o) {
    Map<String, Double> m = new LinkedHashMap<>();
    if (o instanceof Map<?, ?> map) {
      map.forEach((k, v) -> {
        if (v instanceof Number n) {
          m.put(String.valueOf(k), n.doubleValue());
        }
      });
    }
    return m;
  }

  private static Map<String, List<Integer>> stringKeys(Map<Integer, List<Integer>> m) {
    Map<String, List<Integer>> out = new TreeMap<>();
    m.forEach((k, v) -> out.put(Integer.toString(k), v));
    return out;
  }

  static int structuredStep(SnapshotStore.Snapshot s) {
    Object st = s.state().get("structured");
    if (!(st instanceof Map<?, ?> m) || !(m.get("step") instanceof Number step)) {
      throw new IllegalStateException("snapshot " + s.dir() + " was not written by a structured run"
          + " (no 'structured' entry in state.json); resume it with its own method or pass --overwrite");
    }
    return step.intValue();
  }

  /** The unit masks a structured snapshot recorded. */
  static UnitMasks masksOf(BertConfig c, SnapshotStore.Snapshot s) {
    structuredStep(s);
    Map<?, ?> st = (Map<?, ?>) s.state().get("structured");
    return UnitMasks.of(c, intKeys(st.get("pruned_heads"), s), intKeys(st.get("pruned_neurons"), s));
  }

  private static Map<Integer, List<Integer>> intKeys(Object o, SnapshotStore.Snapshot s) {
    Map<Integer, List<Integer>> out = new TreeMap<>();
    if (!(o instanceof Map<?, ?> m)) {
      throw new IllegalStateException("snapshot " + s.dir() + ": structured masks missing in state.json");
    }
    m.forEach((k, v) -> {
      List<Integer> units = new ArrayList<>();
      for (Object u : (List<?>) v) {
        units.add(((Number) u).intValue());
      }
      out.put(Integer.parseInt(String.valueOf(k)), units);
    });
    return out;
  }

  /** The exported model of a structured run: the final snapshot's heads and neurons removed. */
  static HfCheckpoint smallerModel(BertConfig c, LinkedHashMap<String, HostTensor> effective,
      SnapshotStore.Snapshot last, List<String> vocab, boolean padFfn) {
    StructuredShrink.Result r = StructuredShrink.shrink(c, effective, masksOf(c, last), padFfn);
    LOG.info("export: heads and neurons removed, {} -> {} parameters",
        effective.values().stream().mapToLong(HostTensor::numel).sum(), r.parameters());
    return new HfCheckpoint("pruned", r.config(), r.weights(), vocab);
  }
}
