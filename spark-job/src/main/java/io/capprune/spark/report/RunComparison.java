package io.capprune.spark.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Finished runs side by side: the table {@code cap-prune compare} prints, which is how a method is
 * compared with its baseline (same teacher, budget and seed, see docs/results.md). Everything comes
 * from what each run wrote: {@code run.json} (method), {@code metrics.json} (teacher and pruned dev
 * metrics), {@code sparsity.json} and the last record of {@code metrics.jsonl} (steps, wall time of
 * the pruning stage).
 */
public final class RunComparison {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** One finished run. {@code pruneSeconds} is the pruning stage's wall time (NaN if unknown). */
  public record Run(
      String location,
      String task,
      String method,
      Map<String, Double> teacher,
      Map<String, Double> pruned,
      double sparsity,
      long steps,
      double pruneSeconds) {}

  private RunComparison() {}

  /**
   * Reads one run directory (any Hadoop file system); the message names the file that is missing or
   * bad.
   */
  public static Run read(String location, Configuration conf) throws IOException {
    Path root = new Path(location);
    FileSystem fs = root.getFileSystem(conf);
    JsonNode run = readJson(fs, new Path(root, "run.json"));
    JsonNode metrics = readJson(fs, new Path(root, "metrics.json"));
    String method = text(run.path("identity"), "method", new Path(root, "run.json"));
    String task = text(metrics, "task", new Path(root, "metrics.json"));
    Map<String, Double> teacher = numbers(metrics.path("teacher"));
    Map<String, Double> pruned = numbers(metrics.path("pruned"));
    if (pruned.isEmpty() && teacher.isEmpty()) {
      throw new IOException(
          new Path(root, "metrics.json")
              + " has no dev metrics: run `finetune` or `evaluate` first");
    }
    if (pruned.isEmpty()) {
      // Only a teacher so far (finetune alone, or evaluate before any snapshot): no sparsity, no
      // steps.
      return new Run(location, task, method, teacher, pruned, Double.NaN, 0, Double.NaN);
    }
    JsonNode sparsity = readJson(fs, new Path(root, "sparsity.json"));
    if (!sparsity.has("sparsity")) {
      throw new IOException(new Path(root, "sparsity.json") + " has no key 'sparsity'");
    }
    long steps = 0;
    double seconds = Double.NaN;
    Path log = new Path(root, MetricsLog.FILE_NAME);
    if (fs.exists(log)) {
      List<StepRecord> records = MetricsLog.read(fs, log);
      if (!records.isEmpty()) {
        StepRecord last = records.get(records.size() - 1);
        steps = last.step();
        seconds = last.secondsElapsed();
      }
    }
    return new Run(
        location,
        task,
        method,
        teacher,
        pruned,
        sparsity.get("sparsity").asDouble(),
        steps,
        seconds);
  }

  /**
   * A markdown table, one row per run: the teacher's and the pruned model's dev metrics, the pruned
   * model's main metric as a share of the teacher's, sparsity, steps and pruning wall time.
   */
  public static String markdown(List<Run> runs) {
    if (runs.isEmpty()) {
      throw new IllegalArgumentException("nothing to compare");
    }
    Set<String> names = new LinkedHashSet<>();
    for (Run r : runs) {
      names.addAll(r.pruned().keySet());
    }
    if (names.isEmpty()) {
      // Only teachers: their metrics name the columns, the pruned ones stay empty.
      for (Run r : runs) {
        names.addAll(r.teacher().keySet());
      }
    }
    String main = names.iterator().next();
    StringBuilder s = new StringBuilder(512);
    s.append("| run | method | teacher ").append(main).append(" |");
    for (String n : names) {
      s.append(" pruned ").append(n).append(" |");
    }
    s.append(" pruned/teacher ").append(main).append(" | sparsity | steps | prune wall time |\n");
    s.append("|---|---|---|");
    s.append("---|".repeat(names.size()));
    s.append("---|---|---|---|\n");
    for (Run r : runs) {
      Double t = r.teacher().get(main);
      Double p = r.pruned().get(main);
      s.append("| ")
          .append(r.location())
          .append(" | ")
          .append(r.method())
          .append(r.pruned().isEmpty() ? " (teacher only)" : "")
          .append(" | ")
          .append(t == null ? "-" : f4(t))
          .append(" |");
      for (String n : names) {
        Double v = r.pruned().get(n);
        s.append(' ').append(v == null ? "-" : f4(v)).append(" |");
      }
      s.append(' ')
          .append(
              t == null || p == null || t == 0
                  ? "-"
                  : String.format(Locale.ROOT, "%.1f %%", 100 * p / t))
          .append(" | ")
          .append(
              Double.isNaN(r.sparsity())
                  ? "-"
                  : String.format(Locale.ROOT, "%.2f %%", 100 * r.sparsity()))
          .append(" | ")
          .append(r.steps())
          .append(" | ")
          .append(Double.isNaN(r.pruneSeconds()) ? "-" : ProgressLine.duration(r.pruneSeconds()))
          .append(" |\n");
    }
    return s.toString();
  }

  private static String f4(double v) {
    return String.format(Locale.ROOT, "%.4f", v);
  }

  private static JsonNode readJson(FileSystem fs, Path file) throws IOException {
    if (!fs.exists(file)) {
      throw new IOException(
          file + " does not exist: not a finished cap-prune run (run `run` or `evaluate` first)");
    }
    try (InputStream in = fs.open(file)) {
      return JSON.readTree(in);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IOException(file + " is not valid JSON: " + e.getOriginalMessage(), e);
    }
  }

  private static String text(JsonNode node, String key, Path file) throws IOException {
    JsonNode v = node.get(key);
    if (v == null || !v.isTextual()) {
      throw new IOException(file + " has no text key '" + key + "'");
    }
    return v.asText();
  }

  private static Map<String, Double> numbers(JsonNode node) {
    Map<String, Double> out = new java.util.LinkedHashMap<>();
    Iterator<Map.Entry<String, JsonNode>> it = node.fields();
    while (it.hasNext()) {
      Map.Entry<String, JsonNode> e = it.next();
      if (e.getValue().isNumber()) {
        out.put(e.getKey(), e.getValue().asDouble());
      }
    }
    return out;
  }

  /** Reads every location; the first unreadable one stops with its message. */
  public static List<Run> readAll(List<String> locations, Configuration conf) throws IOException {
    List<Run> runs = new ArrayList<>();
    for (String l : locations) {
      runs.add(read(l, conf));
    }
    return runs;
  }
}
