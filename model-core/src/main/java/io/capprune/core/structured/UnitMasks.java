package io.capprune.core.structured;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bert.StructuredMasks;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.tensor.HostTensor;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Which attention heads and FFN neurons of every layer are kept (1) or pruned (0): the {@code
 * head_mask[L, H]} and {@code intermediate_mask[L, I]} buffers of CAP-f (docs/cap-math.md §3.6).
 * Mutable only through {@link #prune}; {@link #copy} before changing a shared instance.
 */
public final class UnitMasks implements Serializable {
  private static final long serialVersionUID = 1L;

  private final float[][] heads;
  private final float[][] neurons;

  private UnitMasks(float[][] heads, float[][] neurons) {
    if (heads.length != neurons.length || heads.length == 0) {
      throw new IllegalArgumentException(
          "unit masks: "
              + heads.length
              + " head rows and "
              + neurons.length
              + " neuron rows; both must be the (positive) number of layers");
    }
    this.heads = heads;
    this.neurons = neurons;
  }

  /** Everything kept, for a model of this (unpruned) configuration. */
  public static UnitMasks allKept(BertConfig c) {
    float[][] h = new float[c.numHiddenLayers()][c.numAttentionHeads()];
    float[][] n = new float[c.numHiddenLayers()][c.intermediateSize()];
    for (float[] row : h) {
      Arrays.fill(row, 1f);
    }
    for (float[] row : n) {
      Arrays.fill(row, 1f);
    }
    return new UnitMasks(h, n);
  }

  /** Masks with the given units pruned (by layer; original indices). */
  public static UnitMasks of(
      BertConfig c,
      Map<Integer, List<Integer>> prunedHeads,
      Map<Integer, List<Integer>> prunedNeurons) {
    UnitMasks m = allKept(c);
    prunedHeads.forEach((l, hs) -> hs.forEach(h -> m.prune(Unit.HEAD, checkLayer(m, l), h)));
    prunedNeurons.forEach((l, ns) -> ns.forEach(n -> m.prune(Unit.NEURON, checkLayer(m, l), n)));
    return m;
  }

  private static int checkLayer(UnitMasks m, int l) {
    if (l < 0 || l >= m.layers()) {
      throw new IllegalArgumentException(
          "unit masks: layer " + l + " is not in 0.." + (m.layers() - 1));
    }
    return l;
  }

  /** The two kinds of structured unit. */
  public enum Unit {
    HEAD,
    NEURON
  }

  public int layers() {
    return heads.length;
  }

  public int headsPerLayer() {
    return heads[0].length;
  }

  public int neuronsPerLayer() {
    return neurons[0].length;
  }

  public boolean isKept(Unit u, int layer, int index) {
    return (u == Unit.HEAD ? heads : neurons)[layer][index] != 0f;
  }

  void prune(Unit u, int layer, int index) {
    float[] row = (u == Unit.HEAD ? heads : neurons)[layer];
    if (index < 0 || index >= row.length) {
      throw new IllegalArgumentException(
          "unit masks: "
              + u
              + " "
              + index
              + " of layer "
              + layer
              + " is not in 0.."
              + (row.length - 1));
    }
    row[index] = 0f;
  }

  public UnitMasks copy() {
    float[][] h = new float[heads.length][];
    float[][] n = new float[neurons.length][];
    for (int l = 0; l < heads.length; l++) {
      h[l] = heads[l].clone();
      n[l] = neurons[l].clone();
    }
    return new UnitMasks(h, n);
  }

  public int kept(Unit u, int layer) {
    int k = 0;
    for (float v : (u == Unit.HEAD ? heads : neurons)[layer]) {
      k += v != 0f ? 1 : 0;
    }
    return k;
  }

  public int totalKept(Unit u) {
    int k = 0;
    for (int l = 0; l < layers(); l++) {
      k += kept(u, l);
    }
    return k;
  }

  public int total(Unit u) {
    return layers() * (u == Unit.HEAD ? headsPerLayer() : neuronsPerLayer());
  }

  /** Kept original indices of a layer, ascending. */
  public int[] keptIndices(Unit u, int layer) {
    float[] row = (u == Unit.HEAD ? heads : neurons)[layer];
    return java.util.stream.IntStream.range(0, row.length).filter(i -> row[i] != 0f).toArray();
  }

  /**
   * Pruned original indices by layer (layers without pruned units omitted), as JSON/HF write them.
   */
  public Map<Integer, List<Integer>> pruned(Unit u) {
    float[][] rows = u == Unit.HEAD ? heads : neurons;
    Map<Integer, List<Integer>> out = new TreeMap<>();
    for (int l = 0; l < rows.length; l++) {
      List<Integer> p = new ArrayList<>();
      for (int i = 0; i < rows[l].length; i++) {
        if (rows[l][i] == 0f) {
          p.add(i);
        }
      }
      if (!p.isEmpty()) {
        out.put(l, p);
      }
    }
    return out;
  }

  /** The masks as forward-pass inputs (optionally autograd leaves), in {@code manager}. */
  public StructuredMasks toNDArrays(NDManager manager, DataType dtype, boolean requiresGradient) {
    NDArray h = array(manager, heads, dtype);
    NDArray n = array(manager, neurons, dtype);
    if (requiresGradient) {
      h.setRequiresGradient(true);
      n.setRequiresGradient(true);
    }
    return new StructuredMasks(h, n);
  }

  private static NDArray array(NDManager manager, float[][] rows, DataType dtype) {
    float[] flat = new float[rows.length * rows[0].length];
    for (int l = 0; l < rows.length; l++) {
      System.arraycopy(rows[l], 0, flat, l * rows[0].length, rows[0].length);
    }
    return manager.create(flat, new Shape(rows.length, rows[0].length)).toType(dtype, false);
  }

  /**
   * The element masks of the six encoder Linear weights of every layer that make W * M compute
   * exactly what the unit masks compute: a pruned head zeroes its rows of Q, K, V and its columns
   * of attention.output.dense (the columns alone already remove its output; the rows make the
   * weights under it zero too), a pruned neuron its row of intermediate.dense and its column of
   * output.dense. Keyed by in-memory weight name, shapes as {@code weights}.
   */
  public LinkedHashMap<String, HostTensor> weightMasks(BertConfig c) {
    if (c.numHiddenLayers() != layers()
        || c.numAttentionHeads() != headsPerLayer()
        || c.intermediateSize() != neuronsPerLayer()
        || c.isStructurallyPruned()) {
      throw new IllegalArgumentException(
          "unit masks of "
              + layers()
              + " x "
              + headsPerLayer()
              + " heads / "
              + neuronsPerLayer()
              + " neurons do not fit the model ("
              + c.numHiddenLayers()
              + " layers, "
              + c.numAttentionHeads()
              + " heads, intermediate "
              + c.intermediateSize()
              + ")");
    }
    int h = c.hiddenSize();
    int d = c.headDim();
    int ffn = c.intermediateSize();
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    for (int l = 0; l < layers(); l++) {
      String p = "encoder.layer." + l + ".";
      HostTensor rows = HostTensor.zeros(h, h);
      HostTensor cols = HostTensor.zeros(h, h);
      for (int head = 0; head < headsPerLayer(); head++) {
        float v = heads[l][head];
        for (int r = head * d; r < (head + 1) * d; r++) {
          Arrays.fill(rows.data(), r * h, (r + 1) * h, v);
          for (int o = 0; o < h; o++) {
            cols.data()[o * h + r] = v;
          }
        }
      }
      out.put(p + "attention.self.query.weight", rows);
      out.put(p + "attention.self.key.weight", rows.copy());
      out.put(p + "attention.self.value.weight", rows.copy());
      out.put(p + "attention.output.dense.weight", cols);
      HostTensor inter = HostTensor.zeros(ffn, h);
      HostTensor outCols = HostTensor.zeros(h, ffn);
      for (int n = 0; n < ffn; n++) {
        float v = neurons[l][n];
        Arrays.fill(inter.data(), n * h, (n + 1) * h, v);
        for (int o = 0; o < h; o++) {
          outCols.data()[o * ffn + n] = v;
        }
      }
      out.put(p + "intermediate.dense.weight", inter);
      out.put(p + "output.dense.weight", outCols);
    }
    return out;
  }

  /** {@code W * M} of the six encoder matrices per layer, copies of every other tensor. */
  public LinkedHashMap<String, HostTensor> maskedWeights(
      BertConfig c, Map<String, HostTensor> weights) {
    Map<String, HostTensor> masks = weightMasks(c);
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    weights.forEach(
        (name, w) -> {
          HostTensor m = masks.get(name);
          HostTensor e = w.copy();
          if (m != null) {
            if (!m.sameShape(w)) {
              throw new IllegalArgumentException(
                  "'"
                      + name
                      + "' has shape "
                      + Arrays.toString(w.shape())
                      + ", its unit mask "
                      + Arrays.toString(m.shape()));
            }
            float[] d = e.data();
            float[] md = m.data();
            for (int i = 0; i < d.length; i++) {
              d[i] *= md[i];
            }
          }
          out.put(name, e);
        });
    return out;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof UnitMasks m
        && Arrays.deepEquals(heads, m.heads)
        && Arrays.deepEquals(neurons, m.neurons);
  }

  @Override
  public int hashCode() {
    return Arrays.deepHashCode(heads) * 31 + Arrays.deepHashCode(neurons);
  }

  @Override
  public String toString() {
    return "UnitMasks[heads kept "
        + totalKept(Unit.HEAD)
        + "/"
        + total(Unit.HEAD)
        + ", neurons kept "
        + totalKept(Unit.NEURON)
        + "/"
        + total(Unit.NEURON)
        + "]";
  }
}
