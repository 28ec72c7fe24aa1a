package io.capprune.core.prune;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Roles of parameters by their Hugging Face names ({@code modeling_bert.py}), with or without a
 * model prefix such as {@code bert.}. The roles follow docs/cap-math.md §3.1 (what is prunable,
 * what is frozen) and the reference optimizer groups (what gets no weight decay).
 */
public final class ParameterNames {

  private static final Pattern PRUNABLE =
      Pattern.compile(
          "^(?:.*\\.)?encoder\\.layer\\.(\\d+)\\."
              + "(?:attention\\.self\\.(?:query|key|value)|attention\\.output\\.dense"
              + "|intermediate\\.dense|output\\.dense)\\.weight$");
  private static final Pattern EMBEDDING = Pattern.compile("^(?:.*\\.)?embeddings\\..+$");
  private static final Pattern ENCODER = Pattern.compile("^(?:.*\\.)?encoder\\..+$");

  /**
   * Suffix of a weight name that movement pruning uses for its scores ({@code
   * MaskedLinear.mask_scores}).
   */
  public static final String MASK_SCORES = "mask_scores";

  private ParameterNames() {}

  /**
   * The 6 Linear weights of every encoder layer (Q, K, V, attention output, intermediate, output):
   * 72 matrices in BERT-base. {@code attention.output.LayerNorm.weight} and biases are not
   * prunable.
   */
  public static boolean isPrunable(String name) {
    return PRUNABLE.matcher(name).matches();
  }

  /** The encoder layer index of a prunable weight, or -1 for any other name. */
  public static int layerOf(String name) {
    Matcher m = PRUNABLE.matcher(name);
    return m.matches() ? Integer.parseInt(m.group(1)) : -1;
  }

  /** Word, position, token-type embeddings and the embedding LayerNorm. */
  public static boolean isEmbedding(String name) {
    return EMBEDDING.matcher(name).matches();
  }

  /**
   * Everything under {@code encoder.}: the parameters the reference's sparsity accounting counts.
   */
  public static boolean isEncoder(String name) {
    return ENCODER.matcher(name).matches();
  }

  /**
   * Biases and LayerNorm parameters get no weight decay. The reference matches the substrings
   * {@code "bias"} and {@code "LayerNorm.weight"}, which also covers {@code LayerNorm.bias}.
   */
  public static boolean isNoDecay(String name) {
    return name.endsWith(".bias")
        || name.equals("bias")
        || name.endsWith("LayerNorm.weight")
        || name.endsWith("LayerNorm.bias");
  }

  /** The name under which the reference stores the scores of a prunable weight, for export. */
  public static String scoresName(String weightName) {
    if (!isPrunable(weightName)) {
      throw new IllegalArgumentException("'" + weightName + "' is not a prunable encoder weight");
    }
    return weightName.substring(0, weightName.length() - "weight".length()) + MASK_SCORES;
  }
}
