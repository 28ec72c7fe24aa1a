package io.capprune.spark.report;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The plain-text end-of-run summary: what was pruned how, how long it took, how sparse the model
 * ended, teacher against pruned dev metrics, and where the outputs are. The driver logs it and
 * writes it as {@code <output>/summary.txt}, the first file a person opens in a finished run.
 *
 * @param steps steps done (less than totalSteps when a run stops early)
 * @param wallSeconds wall-clock time of the run
 * @param finalSparsity fraction of encoder Linear weights pruned at the end, NaN if unknown
 * @param teacherDev the fine-tuned teacher's dev metrics, may be empty
 * @param prunedDev the pruned model's dev metrics, may be empty
 * @param locations named output locations in display order (e.g. "model", "plots", "metrics")
 */
public record RunSummary(
    String task,
    String method,
    long steps,
    long totalSteps,
    double wallSeconds,
    double finalSparsity,
    Map<String, Double> teacherDev,
    Map<String, Double> prunedDev,
    Map<String, String> locations) {

  public static final String FILE_NAME = "summary.txt";

  public RunSummary {
    if (task == null || task.isBlank() || method == null || method.isBlank()) {
      throw new IllegalArgumentException("a run summary needs the task and the method");
    }
    teacherDev = ordered(teacherDev);
    prunedDev = ordered(prunedDev);
    locations =
        locations == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(locations));
  }

  /**
   * The summary of a run from its metrics: steps, wall time and final sparsity come from the last
   * record; the pruned model's dev metrics from the last record that has any, unless given.
   */
  public static RunSummary of(
      String task,
      String method,
      List<StepRecord> records,
      Map<String, Double> teacherDev,
      Map<String, Double> prunedDev,
      Map<String, String> locations) {
    if (records.isEmpty()) {
      return new RunSummary(
          task, method, 0, 0, Double.NaN, Double.NaN, teacherDev, prunedDev, locations);
    }
    StepRecord last = records.get(records.size() - 1);
    double sparsity = Double.NaN;
    Map<String, Double> lastDev = Map.of();
    for (StepRecord r : records) {
      if (!Double.isNaN(r.sparsity())) {
        sparsity = r.sparsity();
      }
      if (r.hasDev()) {
        lastDev = r.dev();
      }
    }
    return new RunSummary(
        task,
        method,
        last.step(),
        last.totalSteps(),
        last.secondsElapsed(),
        sparsity,
        teacherDev,
        prunedDev == null || prunedDev.isEmpty() ? lastDev : prunedDev,
        locations);
  }

  public String render() {
    StringBuilder s = new StringBuilder(512);
    s.append("cap-prune run summary\n");
    row(s, "task", task);
    row(s, "method", method);
    row(s, "steps", steps + " of " + totalSteps + (steps < totalSteps ? " (stopped early)" : ""));
    row(s, "wall time", ProgressLine.duration(wallSeconds));
    row(
        s,
        "final sparsity",
        Double.isNaN(finalSparsity)
            ? "unknown"
            : String.format(
                Locale.ROOT, "%.2f%% of encoder Linear weights pruned", 100 * finalSparsity));
    Set<String> metrics = new LinkedHashSet<>(teacherDev.keySet());
    metrics.addAll(prunedDev.keySet());
    s.append('\n');
    if (metrics.isEmpty()) {
      row(s, "dev metrics", "none (no evaluation ran)");
    } else {
      s.append(
              String.format(
                  Locale.ROOT, "  %-16s%10s%10s%10s", "dev metric", "teacher", "pruned", "change"))
          .append('\n');
      for (String m : metrics) {
        Double t = teacherDev.get(m);
        Double p = prunedDev.get(m);
        String change = t != null && p != null ? String.format(Locale.ROOT, "%+.4f", p - t) : "-";
        s.append(String.format(Locale.ROOT, "  %-16s%10s%10s%10s", m, metric(t), metric(p), change))
            .append('\n');
      }
    }
    if (!locations.isEmpty()) {
      s.append('\n');
      locations.forEach((name, where) -> row(s, name, where));
    }
    return s.toString();
  }

  /**
   * Writes {@code summary.txt} into {@code outputDir} (replacing an older one) and returns the
   * text.
   */
  public String write(FileSystem fs, Path outputDir) throws IOException {
    String text = render();
    try (OutputStream out = fs.create(new Path(outputDir, FILE_NAME), true)) {
      out.write(text.getBytes(StandardCharsets.UTF_8));
    }
    return text;
  }

  private static void row(StringBuilder s, String name, String value) {
    s.append(String.format(Locale.ROOT, "  %-16s", name)).append(value).append('\n');
  }

  private static String metric(Double v) {
    return v == null ? "-" : String.format(Locale.ROOT, "%.4f", v);
  }

  private static Map<String, Double> ordered(Map<String, Double> m) {
    return m == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(m));
  }
}
