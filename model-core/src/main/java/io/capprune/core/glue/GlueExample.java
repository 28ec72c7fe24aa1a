package io.capprune.core.glue;

import java.io.Serializable;
import java.util.Objects;

/**
 * One GLUE example.
 *
 * @param index 0-based position among the examples read from the file (skipped rows excluded), so
 *     indices are 0..N-1 without gaps: the row key of the CAP representation banks
 * @param textA the first (or only) sentence, exactly as in the file
 * @param textB the second sentence, null for single-sentence tasks
 * @param label the class id in the reader's label order; -1 for regression and unlabelled rows
 * @param score the regression target (STS-B); NaN for classification and unlabelled rows
 * @param line 1-based line number in the file, for messages pointing back at the data
 */
public record GlueExample(int index, String textA, String textB, int label, float score, int line)
    implements Serializable {

  public GlueExample {
    Objects.requireNonNull(textA, "textA");
    if (index < 0) {
      throw new IllegalArgumentException("index must be >= 0, got " + index);
    }
    if (label < -1) {
      throw new IllegalArgumentException("label must be >= -1, got " + label);
    }
    if (line < 1) {
      throw new IllegalArgumentException("line must be >= 1, got " + line);
    }
  }

  public static GlueExample classification(
      int index, String textA, String textB, int label, int line) {
    return new GlueExample(index, textA, textB, label, Float.NaN, line);
  }

  public static GlueExample regression(
      int index, String textA, String textB, float score, int line) {
    return new GlueExample(index, textA, textB, -1, score, line);
  }

  public boolean isLabelled() {
    return label >= 0 || !Float.isNaN(score);
  }
}
