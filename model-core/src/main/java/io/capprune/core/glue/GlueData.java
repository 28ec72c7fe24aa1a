package io.capprune.core.glue;

import java.io.Serializable;
import java.util.List;

/**
 * The examples of one split, read from one file.
 *
 * @param source the file name or URI the rows came from
 * @param labels the label strings in classifier order (label id = position); empty for STS-B
 * @param skipped rows left out because they were malformed (only with skip-bad-rows, e.g. QQP)
 * @param skippedSamples messages for the first few skipped rows (line and reason), for the log
 */
public record GlueData(
    GlueTask task,
    String split,
    String source,
    List<String> labels,
    List<GlueExample> examples,
    int skipped,
    List<String> skippedSamples)
    implements Serializable {

  /** How many skipped rows are described in {@link #skippedSamples}. */
  public static final int MAX_SKIPPED_SAMPLES = 10;

  public GlueData {
    labels = List.copyOf(labels);
    examples = List.copyOf(examples);
    skippedSamples = List.copyOf(skippedSamples);
  }

  public int size() {
    return examples.size();
  }

  /** Class ids in example order (-1 where unlabelled): the gold input of {@link GlueMetrics}. */
  public int[] labelIds() {
    int[] out = new int[examples.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = examples.get(i).label();
    }
    return out;
  }

  /** Regression targets in example order (NaN where unlabelled). */
  public float[] scores() {
    float[] out = new float[examples.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = examples.get(i).score();
    }
    return out;
  }
}
