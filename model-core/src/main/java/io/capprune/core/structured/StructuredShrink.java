package io.capprune.core.structured;

import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.structured.UnitMasks.Unit;
import io.capprune.core.tensor.HostTensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The physically smaller model: the pruned heads' rows of Q, K, V (weights and biases) and their
 * columns of attention.output.dense, and the pruned neurons' rows of intermediate.dense (weight and
 * bias) and columns of output.dense, removed. Removing them computes exactly what the masks compute
 * (a masked head's context, a masked neuron's activation, only ever reach the model through those
 * columns), so the logits agree up to float summation order.
 *
 * <p>The configuration records the removed heads as Hugging Face's {@code pruned_heads}; FFN widths
 * become {@code intermediate_size} when all layers keep the same number, otherwise {@code
 * cap_intermediate_sizes} (docs/structured.md). A layer that keeps no neuron keeps one neuron with
 * zero weights, bias and output column (exactly zero contribution), because a Linear of width 0 is
 * not a valid checkpoint tensor.
 */
public final class StructuredShrink {
  private StructuredShrink() {}

  /** A smaller model: its configuration and weights, in-memory names, input order. */
  public record Result(BertConfig config, LinkedHashMap<String, HostTensor> weights) {
    public long parameters() {
      return weights.values().stream().mapToLong(HostTensor::numel).sum();
    }
  }

  /**
   * @param config the unpruned configuration the weights and masks belong to
   * @param weights every tensor of the unpruned model (not modified)
   */
  public static Result shrink(BertConfig config, Map<String, HostTensor> weights, UnitMasks masks) {
    return shrink(config, weights, masks, false);
  }

  /**
   * @param padFfn pad every layer's FFN to the widest layer with zero neurons (zero row, bias and
   *     output column: exactly no contribution), so that one {@code intermediate_size} describes
   *     all layers and Hugging Face loads the model even when the layers keep different counts
   */
  public static Result shrink(
      BertConfig config, Map<String, HostTensor> weights, UnitMasks masks, boolean padFfn) {
    if (config.isStructurallyPruned()) {
      throw new IllegalArgumentException("shrink: the model is already structurally pruned");
    }
    masks.weightMasks(config); // checks that the masks fit the model
    int h = config.hiddenSize();
    int d = config.headDim();
    int[] ffnSizes = new int[config.numHiddenLayers()];
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    Map<Integer, int[]> keptHeadRows = new java.util.HashMap<>();
    Map<Integer, int[]> keptNeurons = new java.util.HashMap<>();
    for (int l = 0; l < config.numHiddenLayers(); l++) {
      int[] heads = masks.keptIndices(Unit.HEAD, l);
      if (heads.length == 0) {
        throw new IllegalArgumentException("shrink: layer " + l + " keeps no attention head");
      }
      int[] rows = new int[heads.length * d];
      for (int i = 0; i < heads.length; i++) {
        for (int j = 0; j < d; j++) {
          rows[i * d + j] = heads[i] * d + j;
        }
      }
      keptHeadRows.put(l, rows);
      int[] neurons = masks.keptIndices(Unit.NEURON, l);
      // -1 marks a zero neuron: a layer that keeps none keeps one (a width of 0 is no tensor).
      keptNeurons.put(l, neurons.length == 0 ? new int[] {-1} : neurons);
      ffnSizes[l] = keptNeurons.get(l).length;
    }
    if (padFfn) {
      int widest = java.util.Arrays.stream(ffnSizes).max().orElse(1);
      for (int l = 0; l < ffnSizes.length; l++) {
        int[] padded = java.util.Arrays.copyOf(keptNeurons.get(l), widest);
        java.util.Arrays.fill(padded, ffnSizes[l], widest, -1);
        keptNeurons.put(l, padded);
        ffnSizes[l] = widest;
      }
    }
    for (Map.Entry<String, HostTensor> e : weights.entrySet()) {
      String name = e.getKey();
      HostTensor t = e.getValue();
      int layer = layerOf(name);
      if (layer < 0) {
        out.put(name, t.copy());
        continue;
      }
      String rest = name.substring(("encoder.layer." + layer + ".").length());
      int[] rows = keptHeadRows.get(layer);
      int[] neurons = keptNeurons.get(layer);
      HostTensor shrunk =
          switch (rest) {
            case "attention.self.query.weight",
                "attention.self.key.weight",
                "attention.self.value.weight",
                "attention.self.query.bias",
                "attention.self.key.bias",
                "attention.self.value.bias" ->
                selectRows(name, t, rows);
            case "attention.output.dense.weight" -> selectColumns(name, t, rows);
            case "intermediate.dense.weight", "intermediate.dense.bias" ->
                selectRows(name, t, neurons);
            case "output.dense.weight" -> selectColumns(name, t, neurons);
            default -> t.copy();
          };
      out.put(name, shrunk);
    }
    BertConfig smaller = config.withStructure(masks.pruned(Unit.HEAD), ffnSizes);
    return new Result(smaller, out);
  }

  private static int layerOf(String name) {
    if (!name.startsWith("encoder.layer.")) {
      return -1;
    }
    int from = "encoder.layer.".length();
    return Integer.parseInt(name.substring(from, name.indexOf('.', from)));
  }

  /** Rows {@code keep} of a [rows, cols] matrix or a [rows] vector; index -1 gives a zero row. */
  static HostTensor selectRows(String name, HostTensor t, int[] keep) {
    int[] shape = t.shape();
    int cols = shape.length == 1 ? 1 : shape[1];
    float[] src = t.data();
    float[] dst = new float[keep.length * cols];
    for (int i = 0; i < keep.length; i++) {
      if (keep[i] >= shape[0]) {
        throw new IllegalArgumentException(
            "shrink: '" + name + "' has " + shape[0] + " rows, row " + keep[i] + " requested");
      }
      if (keep[i] >= 0) {
        System.arraycopy(src, keep[i] * cols, dst, i * cols, cols);
      }
    }
    return new HostTensor(
        shape.length == 1 ? new int[] {keep.length} : new int[] {keep.length, cols}, dst);
  }

  /** Columns {@code keep} of a [rows, cols] matrix; index -1 gives a zero column. */
  static HostTensor selectColumns(String name, HostTensor t, int[] keep) {
    int rows = t.shape()[0];
    int cols = t.shape()[1];
    float[] src = t.data();
    float[] dst = new float[rows * keep.length];
    for (int i = 0; i < keep.length; i++) {
      if (keep[i] >= cols) {
        throw new IllegalArgumentException(
            "shrink: '" + name + "' has " + cols + " columns, column " + keep[i] + " requested");
      }
    }
    for (int r = 0; r < rows; r++) {
      for (int i = 0; i < keep.length; i++) {
        if (keep[i] >= 0) {
          dst[r * keep.length + i] = src[r * cols + keep[i]];
        }
      }
    }
    return new HostTensor(new int[] {rows, keep.length}, dst);
  }
}
