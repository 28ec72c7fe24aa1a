package io.capprune.core.glue;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * The nine GLUE tasks in their original TSV format (the files written by GLUE's {@code
 * download_glue_data.py}), laid out the way Hugging Face's legacy {@code glue_processors} read
 * them, which is how the CAP reference reads its data.
 *
 * <p>Label lists are in the order common Hugging Face checkpoints use for their classifier rows
 * (for MNLI the {@code datasets} order entailment, neutral, contradiction, not the legacy
 * processor's alphabetical one): a fine-tuned teacher's logits only mean something in that order.
 *
 * <p>Main metrics follow the BERT paper's GLUE table: F1 for MRPC and QQP, Spearman for STS-B,
 * Matthews correlation for CoLA, accuracy elsewhere.
 */
public enum GlueTask {
  COLA(
      "CoLA",
      List.of("train", "dev"),
      List.of("test"),
      // No header: [source, label, original_label (empty), sentence].
      Layout.headerless(4, Column.at(3, "sentence"), null, Column.at(1, "label")),
      Layout.withHeader(Column.named("sentence"), null, null),
      List.of("0", "1"),
      List.of(Metric.MCC),
      Metric.MCC,
      false),
  SST2(
      "SST-2",
      List.of("train", "dev"),
      List.of("test"),
      Layout.withHeader(Column.named("sentence"), null, Column.named("label")),
      Layout.withHeader(Column.named("sentence"), null, null),
      List.of("0", "1"),
      List.of(Metric.ACC),
      Metric.ACC,
      false),
  MRPC(
      "MRPC",
      List.of("train", "dev"),
      List.of("test"),
      Layout.withHeader(
          Column.named("#1 String"), Column.named("#2 String"), Column.named("Quality")),
      Layout.withHeader(Column.named("#1 String"), Column.named("#2 String"), null),
      List.of("0", "1"),
      List.of(Metric.ACC, Metric.F1, Metric.ACC_AND_F1, Metric.COMBINED_SCORE),
      Metric.F1,
      false),
  STSB(
      "STS-B",
      List.of("train", "dev"),
      List.of("test"),
      Layout.withHeader(
          Column.named("sentence1"), Column.named("sentence2"), Column.named("score")),
      Layout.withHeader(Column.named("sentence1"), Column.named("sentence2"), null),
      List.of(),
      List.of(Metric.PEARSON, Metric.SPEARMANR, Metric.CORR, Metric.COMBINED_SCORE),
      Metric.SPEARMANR,
      false),
  // The public QQP train/dev files hold rows broken by embedded newlines; HF skips them, so do we.
  QQP(
      "QQP",
      List.of("train", "dev"),
      List.of("test"),
      Layout.withHeader(
          Column.named("question1"), Column.named("question2"), Column.named("is_duplicate")),
      Layout.withHeader(Column.named("question1"), Column.named("question2"), null),
      List.of("0", "1"),
      List.of(Metric.ACC, Metric.F1, Metric.ACC_AND_F1, Metric.COMBINED_SCORE),
      Metric.F1,
      true),
  MNLI(
      "MNLI",
      List.of("train", "dev_matched", "dev_mismatched"),
      List.of("test_matched", "test_mismatched"),
      // gold_label is the last column; train has label1 only, dev label1..label5 before it.
      Layout.withHeader(
          Column.named("sentence1"), Column.named("sentence2"), Column.named("gold_label")),
      Layout.withHeader(Column.named("sentence1"), Column.named("sentence2"), null),
      List.of("entailment", "neutral", "contradiction"),
      List.of(Metric.ACC),
      Metric.ACC,
      false),
  QNLI(
      "QNLI",
      List.of("train", "dev"),
      List.of("test"),
      Layout.withHeader(Column.named("question"), Column.named("sentence"), Column.named("label")),
      Layout.withHeader(Column.named("question"), Column.named("sentence"), null),
      List.of("entailment", "not_entailment"),
      List.of(Metric.ACC),
      Metric.ACC,
      false),
  RTE(
      "RTE",
      List.of("train", "dev"),
      List.of("test"),
      Layout.withHeader(
          Column.named("sentence1"), Column.named("sentence2"), Column.named("label")),
      Layout.withHeader(Column.named("sentence1"), Column.named("sentence2"), null),
      List.of("entailment", "not_entailment"),
      List.of(Metric.ACC),
      Metric.ACC,
      false),
  WNLI(
      "WNLI",
      List.of("train", "dev"),
      List.of("test"),
      Layout.withHeader(
          Column.named("sentence1"), Column.named("sentence2"), Column.named("label")),
      Layout.withHeader(Column.named("sentence1"), Column.named("sentence2"), null),
      List.of("0", "1"),
      List.of(Metric.ACC),
      Metric.ACC,
      false);

  /** Metric keys as {@code glue_compute_metrics} / {@code metric_glue.py} name them. */
  public static final class Metric {
    public static final String ACC = "acc";
    public static final String F1 = "f1";
    public static final String ACC_AND_F1 = "acc_and_f1";
    public static final String MCC = "mcc";
    public static final String PEARSON = "pearson";
    public static final String SPEARMANR = "spearmanr";
    public static final String CORR = "corr";
    public static final String COMBINED_SCORE = "combined_score";

    private Metric() {}
  }

  /**
   * One column of a TSV file.
   *
   * @param name the header name; for files without a header a descriptive name for messages
   * @param index 0-based position, used only for files without a header (-1 otherwise)
   */
  public record Column(String name, int index) implements java.io.Serializable {
    public Column {
      Objects.requireNonNull(name, "name");
    }

    static Column named(String name) {
      return new Column(name, -1);
    }

    static Column at(int index, String name) {
      return new Column(name, index);
    }
  }

  /**
   * How one kind of file is laid out. With a header, columns are found by name and every row must
   * have as many columns as the header; without one, by index and {@code columnCount} applies.
   *
   * @param textB null for single-sentence tasks
   * @param label null for unlabelled (test) files
   */
  public record Layout(boolean header, int columnCount, Column textA, Column textB, Column label)
      implements java.io.Serializable {
    public Layout {
      Objects.requireNonNull(textA, "textA");
    }

    static Layout withHeader(Column textA, Column textB, Column label) {
      return new Layout(true, -1, textA, textB, label);
    }

    static Layout headerless(int columnCount, Column textA, Column textB, Column label) {
      return new Layout(false, columnCount, textA, textB, label);
    }
  }

  private final String dirName;
  private final List<String> labelledSplits;
  private final List<String> testSplits;
  private final Layout labelledLayout;
  private final Layout testLayout;
  private final List<String> labels;
  private final List<String> metrics;
  private final String mainMetric;
  private final boolean skipBadRowsByDefault;

  GlueTask(
      String dirName,
      List<String> labelledSplits,
      List<String> testSplits,
      Layout labelledLayout,
      Layout testLayout,
      List<String> labels,
      List<String> metrics,
      String mainMetric,
      boolean skipBadRowsByDefault) {
    this.dirName = dirName;
    this.labelledSplits = labelledSplits;
    this.testSplits = testSplits;
    this.labelledLayout = labelledLayout;
    this.testLayout = testLayout;
    this.labels = labels;
    this.metrics = metrics;
    this.mainMetric = mainMetric;
    this.skipBadRowsByDefault = skipBadRowsByDefault;
  }

  /** The directory name in {@code glue_data/}, e.g. {@code SST-2}; also the display name. */
  public String dirName() {
    return dirName;
  }

  /** Every split: train, the dev split(s), the unlabelled test split(s). */
  public List<String> splits() {
    List<String> all = new ArrayList<>(labelledSplits);
    all.addAll(testSplits);
    return List.copyOf(all);
  }

  public String trainSplit() {
    return "train";
  }

  /** {@code [dev]}, or for MNLI {@code [dev_matched, dev_mismatched]}. */
  public List<String> devSplits() {
    return labelledSplits.subList(1, labelledSplits.size());
  }

  public List<String> testSplits() {
    return testSplits;
  }

  /** The file name of a split in the task directory, e.g. {@code dev_matched.tsv}. */
  public String fileName(String split) {
    requireSplit(split);
    return split + ".tsv";
  }

  /** The layout of a split's file; test splits have no label column. */
  public Layout layout(String split) {
    requireSplit(split);
    return testSplits.contains(split) ? testLayout : labelledLayout;
  }

  public boolean hasHeader(String split) {
    return layout(split).header();
  }

  public boolean isPair() {
    return labelledLayout.textB() != null;
  }

  /** Label strings in classifier order; empty for the regression task STS-B. */
  public List<String> labels() {
    return labels;
  }

  /** 1 for regression, otherwise the number of labels: the classifier's {@code num_labels}. */
  public int numLabels() {
    return isRegression() ? 1 : labels.size();
  }

  public boolean isRegression() {
    return labels.isEmpty();
  }

  /** The keys of the map {@link GlueMetrics#compute} returns for this task, in order. */
  public List<String> metrics() {
    return metrics;
  }

  public String mainMetric() {
    return mainMetric;
  }

  /** QQP only: the public files hold malformed rows that every reference implementation skips. */
  public boolean skipBadRowsByDefault() {
    return skipBadRowsByDefault;
  }

  /**
   * Finds a task by name, ignoring case, {@code -} and {@code _}: {@code sst-2}, {@code sst2},
   * {@code SST-2}, {@code STS_B} and the enum names all work.
   *
   * @throws IllegalArgumentException naming the valid tasks
   */
  public static GlueTask of(String name) {
    if (name != null) {
      String key = normalise(name);
      for (GlueTask t : values()) {
        if (normalise(t.name()).equals(key) || normalise(t.dirName).equals(key)) {
          return t;
        }
      }
    }
    List<String> valid = new ArrayList<>();
    for (GlueTask t : values()) {
      valid.add(t.dirName);
    }
    throw new IllegalArgumentException(
        "unknown GLUE task '" + name + "' (valid: " + String.join(", ", valid) + ")");
  }

  private static String normalise(String s) {
    return s.trim().toLowerCase(Locale.ROOT).replace("-", "").replace("_", "");
  }

  private void requireSplit(String split) {
    if (!labelledSplits.contains(split) && !testSplits.contains(split)) {
      throw new IllegalArgumentException(
          "GLUE task "
              + dirName
              + " has no split '"
              + split
              + "' (splits: "
              + String.join(", ", splits())
              + ")");
    }
  }

  @Override
  public String toString() {
    return dirName;
  }
}
