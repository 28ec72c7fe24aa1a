package io.capprune.spark.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * {@code <output>/metrics.jsonl}: one JSON object per {@link StepRecord}, one per line, in step
 * order. Keys are snake_case; a term that is off or a value that is unknown is left out (JSON has
 * no NaN) and reads back as NaN. The total loss is never off, so a NaN there is a diverged run and
 * is written as the string {@code "NaN"}; infinities are written as {@code "Infinity"} / {@code
 * "-Infinity"}.
 *
 * <p>S3 has no append, and HDFS append is off on many clusters, so the log never appends: it keeps
 * every record in memory and rewrites the whole file at each flush, through {@code
 * FileSystem.create(path, overwrite=true)}. On S3 the new object replaces the old one only when the
 * upload completes, so readers see either the old or the new file. Flushes happen every {@code
 * flushEvery} records and on {@link #close()}. The cost grows with the run (a 10 000-record file is
 * about 3 MB), which is why the driver logs every N steps, not every step.
 *
 * <p>Not thread-safe; the driver loop owns it.
 */
public final class MetricsLog implements Closeable {

  public static final String FILE_NAME = "metrics.jsonl";

  private static final ObjectMapper JSON = new ObjectMapper();

  private final FileSystem fs;
  private final Path file;
  private final int flushEvery;
  private final List<StepRecord> records = new ArrayList<>();
  private int unflushed;
  private int flushes;

  private MetricsLog(FileSystem fs, Path outputDir, int flushEvery, List<StepRecord> initial) {
    if (flushEvery < 1) {
      throw new IllegalArgumentException("flushEvery must be >= 1, got " + flushEvery);
    }
    this.fs = fs;
    this.file = new Path(outputDir, FILE_NAME);
    this.flushEvery = flushEvery;
    this.records.addAll(initial);
  }

  /** A new, empty log; the first flush replaces any {@code metrics.jsonl} already there. */
  public static MetricsLog create(FileSystem fs, Path outputDir, int flushEvery) {
    return new MetricsLog(fs, outputDir, flushEvery, List.of());
  }

  /**
   * Continues the log of a run resumed from the snapshot taken after {@code resumedStep}. Records
   * after that step were written by the attempt that died; the resumed run repeats those steps, so
   * they are dropped (at the next flush) instead of appearing twice in the plots. A missing file
   * starts an empty log.
   */
  public static MetricsLog resume(FileSystem fs, Path outputDir, int flushEvery, long resumedStep)
      throws IOException {
    Path f = new Path(outputDir, FILE_NAME);
    List<StepRecord> kept = new ArrayList<>();
    if (fs.exists(f)) {
      for (StepRecord r : read(fs, f)) {
        if (r.step() <= resumedStep) {
          kept.add(r);
        }
      }
    }
    return new MetricsLog(fs, outputDir, flushEvery, kept);
  }

  public Path path() {
    return file;
  }

  /** All records so far, flushed or not, in step order. */
  public List<StepRecord> records() {
    return List.copyOf(records);
  }

  /** How many times the file was (re)written; lets tests and benchmarks see the flush policy. */
  public int flushCount() {
    return flushes;
  }

  public void append(StepRecord r) throws IOException {
    if (!records.isEmpty() && r.step() <= records.get(records.size() - 1).step()) {
      throw new IllegalArgumentException(
          "metrics must be logged in step order: step "
              + r.step()
              + " after step "
              + records.get(records.size() - 1).step()
              + " in "
              + file);
    }
    records.add(r);
    if (++unflushed >= flushEvery) {
      flush();
    }
  }

  /** Rewrites the whole file with every record so far. */
  public void flush() throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(records.size() * 320 + 16);
    for (StepRecord r : records) {
      bytes.write(toJson(r).getBytes(StandardCharsets.UTF_8));
      bytes.write('\n');
    }
    try (OutputStream out = fs.create(file, true)) {
      bytes.writeTo(out);
    }
    unflushed = 0;
    flushes++;
  }

  @Override
  public void close() throws IOException {
    flush();
  }

  /**
   * Reads a {@code metrics.jsonl}. Blank lines are skipped. A last line without its newline that
   * does not parse is a write torn by a crash on a filesystem without atomic replace (local, HDFS)
   * and is dropped; any other bad line fails with the file and line number.
   */
  public static List<StepRecord> read(FileSystem fs, Path file) throws IOException {
    String text;
    try (InputStream in = fs.open(file)) {
      text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    String[] lines = text.split("\n", -1);
    List<StepRecord> out = new ArrayList<>();
    for (int i = 0; i < lines.length; i++) {
      String line = lines[i].strip();
      if (line.isEmpty()) {
        continue;
      }
      boolean torn = i == lines.length - 1; // text did not end with '\n'
      StepRecord r;
      try {
        r = fromJson(line, file + ":" + (i + 1));
      } catch (IllegalArgumentException e) {
        if (torn) {
          break;
        }
        throw e;
      }
      if (!out.isEmpty() && r.step() <= out.get(out.size() - 1).step()) {
        throw new IllegalArgumentException(
            file
                + ":"
                + (i + 1)
                + ": step "
                + r.step()
                + " does not follow step "
                + out.get(out.size() - 1).step());
      }
      out.add(r);
    }
    return out;
  }

  /** One record as a single-line JSON object. */
  public static String toJson(StepRecord r) {
    ObjectNode o = JSON.createObjectNode();
    o.put("step", r.step());
    o.put("total_steps", r.totalSteps());
    o.put("epoch", r.epoch());
    if (Double.isNaN(r.loss())) {
      o.put("loss", "NaN");
    } else {
      putFinite(o, "loss", r.loss());
    }
    putFinite(o, "ce", r.ce());
    putFinite(o, "kd", r.kd());
    putFinite(o, "prc", r.prc());
    putFinite(o, "snc", r.snc());
    putFinite(o, "fic", r.fic());
    putFinite(o, "regulariser", r.regulariser());
    putFinite(o, "sparsity", r.sparsity());
    putFinite(o, "threshold", r.threshold());
    putFinite(o, "learning_rate", r.learningRate());
    putFinite(o, "grad_norm", r.gradNorm());
    putFinite(o, "examples_per_second", r.examplesPerSecond());
    putFinite(o, "seconds_elapsed", r.secondsElapsed());
    putFinite(o, "seconds_left", r.secondsLeft());
    if (r.hasDev()) {
      ObjectNode dev = o.putObject("dev");
      // An evaluated metric that came out NaN (e.g. a correlation of constant predictions) is
      // still a result, unlike a term that is off: keep it.
      r.dev()
          .forEach(
              (k, v) -> {
                if (Double.isNaN(v)) {
                  dev.put(k, "NaN");
                } else {
                  putFinite(dev, k, v);
                }
              });
    }
    try {
      return JSON.writeValueAsString(o);
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Parses one line. {@code where} names the file and line for error messages. Unknown keys are
   * ignored so that a newer job's log still reads.
   */
  public static StepRecord fromJson(String line, String where) {
    JsonNode o;
    try {
      o = JSON.readTree(line);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(where + ": not valid JSON: " + e.getOriginalMessage(), e);
    }
    if (o == null || !o.isObject()) {
      throw new IllegalArgumentException(where + ": expected a JSON object per line");
    }
    Map<String, Double> dev = new LinkedHashMap<>();
    JsonNode devNode = o.get("dev");
    if (devNode != null && !devNode.isNull()) {
      if (!devNode.isObject()) {
        throw new IllegalArgumentException(
            where + ": key 'dev' must be an object of metric values");
      }
      for (Map.Entry<String, JsonNode> e : devNode.properties()) {
        dev.put(e.getKey(), number(devNode, e.getKey(), where, "dev."));
      }
    }
    try {
      return new StepRecord(
          integer(o, "step", where),
          integer(o, "total_steps", where),
          Math.toIntExact(integer(o, "epoch", where)),
          number(o, "loss", where),
          number(o, "ce", where),
          number(o, "kd", where),
          number(o, "prc", where),
          number(o, "snc", where),
          number(o, "fic", where),
          number(o, "regulariser", where),
          number(o, "sparsity", where),
          number(o, "threshold", where),
          number(o, "learning_rate", where),
          number(o, "grad_norm", where),
          number(o, "examples_per_second", where),
          number(o, "seconds_elapsed", where),
          number(o, "seconds_left", where),
          dev);
    } catch (IllegalArgumentException | ArithmeticException e) {
      if (e.getMessage() != null && e.getMessage().startsWith(where)) {
        throw e;
      }
      throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
    }
  }

  private static long integer(JsonNode o, String key, String where) {
    JsonNode v = o.get(key);
    if (v == null || v.isNull()) {
      throw new IllegalArgumentException(where + ": missing key '" + key + "'");
    }
    if (!v.isIntegralNumber() || !v.canConvertToLong()) {
      throw new IllegalArgumentException(
          where + ": key '" + key + "' must be an integer, got " + v);
    }
    return v.longValue();
  }

  private static double number(JsonNode o, String key, String where) {
    return number(o, key, where, "");
  }

  private static double number(JsonNode o, String key, String where, String prefix) {
    JsonNode v = o.get(key);
    if (v == null || v.isNull()) {
      return Double.NaN;
    }
    if (v.isTextual()) {
      switch (v.textValue()) {
        case "NaN":
          return Double.NaN;
        case "Infinity":
          return Double.POSITIVE_INFINITY;
        case "-Infinity":
          return Double.NEGATIVE_INFINITY;
        default:
          break;
      }
    }
    if (!v.isNumber()) {
      throw new IllegalArgumentException(
          where + ": key '" + prefix + key + "' must be a number, got " + v);
    }
    return v.doubleValue();
  }

  private static void putFinite(ObjectNode o, String key, double v) {
    if (Double.isInfinite(v)) {
      o.put(key, v > 0 ? "Infinity" : "-Infinity");
    } else if (!Double.isNaN(v)) {
      o.put(key, v);
    }
  }
}
