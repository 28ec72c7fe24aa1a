package io.capprune.spark.report;

import java.awt.Color;
import java.io.IOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.ToDoubleFunction;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The three progress plots of a run, drawn from its {@link StepRecord}s: {@code loss.png} (every
 * loss term that is on), {@code sparsity.png} (sparsity, with the schedule's threshold on a second
 * axis because tau of soft movement is not a fraction), and {@code dev-metric.png} (the dev metrics
 * at the evaluation steps, with the teacher's as dashed reference lines when known). Written
 * through the Hadoop FileSystem so that they land next to the model on HDFS or S3.
 */
public final class Plots {

  public static final String LOSS = "loss.png";
  public static final String SPARSITY = "sparsity.png";
  public static final String DEV_METRIC = "dev-metric.png";

  /** When the loss terms span this many decades, the loss plot uses a log axis by default. */
  static final double LOG_SCALE_DECADES = 1.5;

  private static final Color TOTAL = new Color(0x262626);
  // One colour per term whatever else is on, so "kd" is orange in every run's plot.
  private static final Map<String, Color> TERM_COLORS =
      Map.of(
          "ce",
          LineChart.PALETTE[0],
          "kd",
          LineChart.PALETTE[1],
          "prc",
          LineChart.PALETTE[2],
          "snc",
          LineChart.PALETTE[3],
          "fic",
          LineChart.PALETTE[4],
          "regulariser",
          LineChart.PALETTE[6]);

  private Plots() {}

  /** Writes the three plots; log scale for the losses is chosen from their spread. */
  public static List<Path> writeAll(List<StepRecord> records, FileSystem fs, Path outputDir)
      throws IOException {
    return writeAll(records, Map.of(), fs, outputDir, null);
  }

  /**
   * Writes the three plots into {@code outputDir}, replacing older ones.
   *
   * @param teacherDev the teacher's dev metrics, drawn as dashed horizontal lines; may be empty
   * @param logLoss log-scale loss axis, or null to decide from the data
   * @return the paths written, in the order loss, sparsity, dev metric
   */
  public static List<Path> writeAll(
      List<StepRecord> records,
      Map<String, Double> teacherDev,
      FileSystem fs,
      Path outputDir,
      Boolean logLoss)
      throws IOException {
    List<Path> written = new ArrayList<>(3);
    written.add(write(fs, new Path(outputDir, LOSS), lossChart(records, logLoss)));
    written.add(write(fs, new Path(outputDir, SPARSITY), sparsityChart(records)));
    written.add(write(fs, new Path(outputDir, DEV_METRIC), devChart(records, teacherDev)));
    return written;
  }

  public static LineChart lossChart(List<StepRecord> records, Boolean logScale) {
    double[] steps = column(records, r -> r.step());
    LineChart chart =
        new LineChart("Training loss", "step", "loss")
            .integerX(true)
            .emptyNote("no steps logged yet");
    Map<String, double[]> terms = new LinkedHashMap<>();
    terms.put("total", column(records, StepRecord::loss));
    terms.put("ce", column(records, StepRecord::ce));
    terms.put("kd", column(records, StepRecord::kd));
    terms.put("prc", column(records, StepRecord::prc));
    terms.put("snc", column(records, StepRecord::snc));
    terms.put("fic", column(records, StepRecord::fic));
    terms.put("regulariser", column(records, StepRecord::regulariser));
    double min = Double.POSITIVE_INFINITY;
    double max = 0;
    for (Map.Entry<String, double[]> t : terms.entrySet()) {
      double[] y = t.getValue();
      if (!anyFinite(y)) {
        continue; // the term is off for the whole run: no empty legend entry
      }
      LineChart.Series s = LineChart.Series.of(t.getKey(), steps, y);
      chart.add(
          t.getKey().equals("total")
              ? s.withColor(TOTAL, 2.5f)
              : s.withColor(TERM_COLORS.get(t.getKey()), 1.6f));
      for (double v : y) {
        if (Double.isFinite(v) && v > 0) {
          min = Math.min(min, v);
          max = Math.max(max, v);
        }
      }
    }
    boolean log =
        logScale != null ? logScale : min < max && Math.log10(max / min) >= LOG_SCALE_DECADES;
    return chart.logY(log);
  }

  public static LineChart sparsityChart(List<StepRecord> records) {
    double[] steps = column(records, r -> r.step());
    double[] sparsityPct = column(records, r -> 100 * r.sparsity());
    double[] threshold = column(records, StepRecord::threshold);
    LineChart chart =
        new LineChart("Sparsity of encoder Linear weights", "step", "pruned (%)")
            .rightAxisLabel("threshold")
            .integerX(true)
            .yRange(0, 100)
            .emptyNote("no steps logged yet");
    if (anyFinite(sparsityPct)) {
      chart.add(
          LineChart.Series.of("sparsity", steps, sparsityPct)
              .withColor(LineChart.PALETTE[0], 2.5f));
    }
    if (anyFinite(threshold)) {
      chart.add(
          LineChart.Series.of("threshold", steps, threshold)
              .withColor(LineChart.PALETTE[1], 2f)
              .asDashed()
              .onRightAxis());
    }
    return chart;
  }

  public static LineChart devChart(List<StepRecord> records, Map<String, Double> teacherDev) {
    LineChart chart =
        new LineChart("Dev metrics at evaluation steps", "step", "metric")
            .integerX(true)
            .emptyNote("no evaluation yet");
    Set<String> names = new LinkedHashSet<>();
    for (StepRecord r : records) {
      names.addAll(r.dev().keySet());
    }
    double firstStep = records.isEmpty() ? 0 : records.get(0).step();
    double lastStep = records.isEmpty() ? 1 : records.get(records.size() - 1).step();
    int colour = 0;
    for (String name : names) {
      List<double[]> points = new ArrayList<>();
      for (StepRecord r : records) {
        Double v = r.dev().get(name);
        if (v != null) {
          points.add(new double[] {r.step(), v});
        }
      }
      double[] x = new double[points.size()];
      double[] y = new double[points.size()];
      for (int i = 0; i < x.length; i++) {
        x[i] = points.get(i)[0];
        y[i] = points.get(i)[1];
      }
      Color c = LineChart.PALETTE[colour++ % LineChart.PALETTE.length];
      chart.add(LineChart.Series.of(name, x, y).withColor(c, 2f));
      Double teacher = teacherDev == null ? null : teacherDev.get(name);
      if (teacher != null && Double.isFinite(teacher) && !points.isEmpty()) {
        chart.add(
            LineChart.Series.of(
                    "teacher " + name,
                    new double[] {firstStep, lastStep},
                    new double[] {teacher, teacher})
                .withColor(c, 1.5f)
                .asDashed());
      }
    }
    return chart;
  }

  private static Path write(FileSystem fs, Path path, LineChart chart) throws IOException {
    byte[] png = chart.toPng(LineChart.DEFAULT_WIDTH, LineChart.DEFAULT_HEIGHT);
    try (OutputStream out = fs.create(path, true)) {
      out.write(png);
    }
    return path;
  }

  private static double[] column(List<StepRecord> records, ToDoubleFunction<StepRecord> f) {
    double[] out = new double[records.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = f.applyAsDouble(records.get(i));
    }
    return out;
  }

  private static boolean anyFinite(double[] v) {
    for (double d : v) {
      if (Double.isFinite(d)) {
        return true;
      }
    }
    return false;
  }
}
