package io.capprune.spark.pipeline.export;

import io.capprune.core.checkpoint.CheckpointStore;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.prune.SparsityReport;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.HostTensor;
import io.capprune.spark.io.SnapshotStore;
import io.capprune.spark.pipeline.OutputLayout;
import io.capprune.spark.pipeline.RunContext;
import io.capprune.spark.pipeline.Stage;
import io.capprune.spark.pipeline.prune.StructuredPruneStage;
import io.capprune.spark.report.MetricsLog;
import io.capprune.spark.report.RunSummary;
import io.capprune.spark.report.StepRecord;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.hadoop.fs.Path;

/**
 * The model users pull: the final snapshot in Hugging Face layout ({@code model/}, pruned weights
 * zeroed; a structured run's heads and neurons removed), {@code sparsity.json}, and {@code
 * summary.txt} with the dev metrics evaluate wrote. Runs every time, from the snapshot.
 */
public final class ExportStage implements Stage<Void> {

  @Override
  public String name() {
    return "export";
  }

  @Override
  public Optional<String> completeOutput(RunContext run) {
    return Optional.empty();
  }

  @Override
  public Void run(RunContext run) {
    SnapshotStore store = run.snapshots();
    SnapshotStore.Snapshot last = finalSnapshot(store);
    TrainingState state = store.read(last);
    LinkedHashMap<String, HostTensor> weights = state.effectiveWeights();
    Path modelDir = run.resolve(OutputLayout.MODEL_DIR);
    List<String> vocab = run.pretrained().vocab();
    // Structured runs export the physically smaller model (heads and neurons removed).
    HfCheckpoint model =
        run.config().prune().method().structured()
            ? StructuredPruneStage.smallerModel(
                run.core().student(), weights, last, vocab, run.config().structured().padFfn())
            : new HfCheckpoint("pruned", run.core().student(), weights, vocab);
    try {
      CheckpointStore.write(model, modelDir.toString(), run.storage().conf(), true);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + modelDir + ": " + e.getMessage(), e);
    }
    run.writeJson(run.resolve(OutputLayout.SPARSITY_JSON), sparsity(state.sparsity()));

    Map<String, Object> metrics = run.readJson(run.resolve(OutputLayout.METRICS_JSON));
    List<StepRecord> records = run.readRecords(run.resolve(MetricsLog.FILE_NAME));
    Map<String, String> locations = new LinkedHashMap<>();
    locations.put("model", modelDir.toString());
    locations.put("sparsity", run.resolve(OutputLayout.SPARSITY_JSON).toString());
    locations.put("metrics", run.resolve(OutputLayout.METRICS_JSON).toString());
    locations.put("plots", run.resolve(OutputLayout.PLOTS_DIR).toString());
    RunSummary summary =
        RunSummary.of(
            run.task().name(),
            run.config().prune().method().configName(),
            records,
            RunContext.doubles(metrics.get("teacher")),
            RunContext.doubles(metrics.get("pruned")),
            locations);
    try {
      String text = summary.write(run.storage().fs(run.out().root()), run.out().root());
      run.log().info("export: model written to {}\n{}", modelDir, text);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return null;
  }

  private static SnapshotStore.Snapshot finalSnapshot(SnapshotStore store) {
    List<SnapshotStore.Snapshot> all = store.committed();
    if (all.isEmpty() || !Boolean.TRUE.equals(all.get(all.size() - 1).state().get("final"))) {
      throw new IllegalStateException(
          store.root() + " holds no final snapshot: run the prune stage first");
    }
    return all.get(all.size() - 1);
  }

  /** sparsity.json: the kept weights of the encoder's linear layers, in total and per matrix. */
  private static Map<String, Object> sparsity(SparsityReport report) {
    Map<String, Object> sparsity = new LinkedHashMap<>();
    sparsity.put("encoder_linear_weights", report.totalNumel());
    sparsity.put("kept", report.totalKept());
    sparsity.put("sparsity", report.sparsity());
    sparsity.put("remaining_encoder_fraction", report.remainingEncoderFraction());
    List<Map<String, Object>> matrices = new ArrayList<>();
    for (SparsityReport.Entry e : report.matrices()) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("name", e.name());
      m.put("numel", e.numel());
      m.put("kept", e.kept());
      m.put("sparsity", e.sparsity());
      matrices.add(m);
    }
    sparsity.put("matrices", matrices);
    return sparsity;
  }
}
