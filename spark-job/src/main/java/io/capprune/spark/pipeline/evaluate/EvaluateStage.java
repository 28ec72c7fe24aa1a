package io.capprune.spark.pipeline.evaluate;

import io.capprune.spark.io.SnapshotStore;
import io.capprune.spark.pipeline.OutputLayout;
import io.capprune.spark.pipeline.RunContext;
import io.capprune.spark.pipeline.Stage;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Dev metrics of whatever the output directory holds into metrics.json: the teacher (cap.teacher or
 * {@code teacher/}) and the pruned model, which is the final snapshot when pruning finished and the
 * last committed snapshot otherwise ({@code pruned_final} says which; {@code scored} names both).
 * Refuses only when there is neither a teacher nor a committed snapshot. Runs every time: its
 * output depends on what the directory holds now.
 */
public final class EvaluateStage implements Stage<Map<String, Object>> {

  @Override
  public String name() {
    return "evaluate";
  }

  @Override
  public Optional<String> completeOutput(RunContext run) {
    return Optional.empty();
  }

  /**
   * @return the content of metrics.json
   */
  @Override
  public Map<String, Object> run(RunContext run) {
    SnapshotStore store = run.snapshots();
    List<SnapshotStore.Snapshot> committed = store.committed();
    boolean hasTeacher = run.teacher().available();
    if (!hasTeacher && committed.isEmpty()) {
      throw new IllegalStateException(
          run.out().root()
              + " holds nothing to score: no teacher in "
              + run.teacher().location()
              + " and no committed snapshot in "
              + store.root()
              + "; run the finetune stage (or set cap.teacher) or the prune stage first");
    }
    DevScorer scorer = new DevScorer(run);
    Map<String, Object> metrics = new LinkedHashMap<>();
    Map<String, String> scored = new LinkedHashMap<>();
    metrics.put("task", run.task().name());
    if (hasTeacher) {
      metrics.put("teacher", scorer.score(new LinkedHashMap<>(run.teacher().read().tensors())));
      scored.put(
          "teacher",
          run.teacher().given() ? run.config().teacher() : OutputLayout.TEACHER_DIR + "/");
    }
    if (!committed.isEmpty()) {
      SnapshotStore.Snapshot last = committed.get(committed.size() - 1);
      boolean isFinal = Boolean.TRUE.equals(last.state().get("final"));
      metrics.put("pruned", scorer.score(store.effectiveWeights(last)));
      metrics.put("pruned_step", last.step());
      metrics.put("pruned_final", isFinal);
      scored.put(
          "pruned",
          (isFinal
                  ? "final model: snapshot "
                  : "last committed snapshot (pruning not finished): snapshot ")
              + OutputLayout.SNAPSHOTS_DIR
              + "/"
              + last.dir().getName()
              + ", step "
              + last.step());
      Map<String, Object> perSnapshot = new LinkedHashMap<>();
      for (SnapshotStore.Snapshot s : committed) {
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("epoch", s.epoch());
        entry.put("sparsity", s.state().get("sparsity"));
        entry.put("dev", s.state().getOrDefault("dev", new LinkedHashMap<>()));
        perSnapshot.put(Long.toString(s.step()), entry);
      }
      metrics.put("snapshots", perSnapshot);
    }
    metrics.put("scored", scored);
    run.writeJson(run.resolve(OutputLayout.METRICS_JSON), metrics);
    run.log().info("evaluate: {}", describeScores(metrics).replace("\n", "; "));
    return metrics;
  }

  /**
   * One line per model that the evaluate or finetune stage scored: what it was and its dev metrics,
   * e.g. {@code teacher (teacher/): accuracy=0.8819}.
   */
  @SuppressWarnings("unchecked")
  public static String describeScores(Map<String, Object> metrics) {
    Map<String, Object> scored =
        metrics.get("scored") instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
    StringBuilder s = new StringBuilder();
    for (String which : List.of("teacher", "pruned")) {
      if (metrics.get(which) instanceof Map<?, ?> dev) {
        if (s.length() > 0) {
          s.append('\n');
        }
        s.append(which).append(" (").append(scored.getOrDefault(which, "?")).append("):");
        dev.forEach(
            (k, v) ->
                s.append(' ')
                    .append(k)
                    .append('=')
                    .append(
                        v instanceof Number n
                            ? String.format(Locale.ROOT, "%.4f", n.doubleValue())
                            : v));
      }
    }
    return s.toString();
  }
}
