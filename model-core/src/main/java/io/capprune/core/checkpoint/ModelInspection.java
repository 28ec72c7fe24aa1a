package io.capprune.core.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.capprune.core.tensor.HostTensor;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.apache.hadoop.conf.Configuration;

/**
 * What {@code cap-prune inspect <checkpoint> [--json]} prints: the architecture, the parameter
 * count, and the sparsity of every encoder Linear weight (the matrices CAP prunes).
 *
 * @param parameters elements of all tensors
 * @param encoderLinearWeights elements of the encoder's Linear weight matrices
 * @param encoderLinearZeros how many of those are exactly zero
 */
public record ModelInspection(
    String source,
    BertConfig config,
    int tensorCount,
    long parameters,
    long encoderLinearWeights,
    long encoderLinearZeros,
    boolean hasPooler,
    boolean hasClassifier,
    List<Matrix> matrices,
    List<Layer> layers) {

  public static final String USAGE = "usage: cap-prune inspect <checkpoint-dir-or-URI> [--json]";

  public ModelInspection {
    matrices = List.copyOf(matrices);
    layers = List.copyOf(layers);
  }

  /**
   * Structured view of one encoder layer: heads and FFN neurons physically present, and how many of
   * them are live (a head or neuron whose output columns are all zero contributes nothing, which is
   * how a masked, not physically pruned, model stores a pruned unit).
   */
  public record Layer(int index, int heads, int headsKept, int neurons, int neuronsKept) {}

  static List<Layer> layers(HfCheckpoint ckpt) {
    BertConfig c = ckpt.config();
    List<Layer> out = new ArrayList<>();
    for (int l = 0; l < c.numHiddenLayers(); l++) {
      String p = "encoder.layer." + l + ".";
      int heads = c.headsInLayer(l);
      int neurons = c.intermediateSizeOf(l);
      int headsKept =
          liveColumnGroups(ckpt.tensor(p + "attention.output.dense.weight"), c.headDim());
      int neuronsKept = liveColumnGroups(ckpt.tensor(p + "output.dense.weight"), 1);
      out.add(new Layer(l, heads, headsKept, neurons, neuronsKept));
    }
    return out;
  }

  /** Groups of {@code group} consecutive columns with at least one non-zero entry. */
  private static int liveColumnGroups(HostTensor t, int group) {
    int rows = t.shape()[0];
    int cols = t.shape()[1];
    boolean[] live = new boolean[cols / group];
    float[] d = t.data();
    for (int r = 0; r < rows; r++) {
      for (int col = 0; col < cols; col++) {
        if (d[r * cols + col] != 0f) {
          live[col / group] = true;
        }
      }
    }
    int n = 0;
    for (boolean b : live) {
      n += b ? 1 : 0;
    }
    return n;
  }

  /** One encoder Linear weight. */
  public record Matrix(String name, int[] shape, long numel, long zeros) {
    public double sparsity() {
      return numel == 0 ? 0.0 : (double) zeros / numel;
    }
  }

  public static ModelInspection of(HfCheckpoint ckpt) {
    List<Matrix> matrices = new ArrayList<>();
    long weights = 0;
    long zeros = 0;
    for (String name : BertTensorNames.encoderLinearWeights(ckpt.config())) {
      HostTensor t = ckpt.tensor(name);
      long z = t.countZeros();
      matrices.add(new Matrix(name, t.shape().clone(), t.numel(), z));
      weights += t.numel();
      zeros += z;
    }
    return new ModelInspection(
        ckpt.source(),
        ckpt.config(),
        ckpt.tensors().size(),
        ckpt.parameterCount(),
        weights,
        zeros,
        ckpt.hasPooler(),
        ckpt.hasClassifier(),
        matrices,
        layers(ckpt));
  }

  public double encoderLinearSparsity() {
    return encoderLinearWeights == 0 ? 0.0 : (double) encoderLinearZeros / encoderLinearWeights;
  }

  public String toJson() {
    ObjectMapper json = new ObjectMapper();
    ObjectNode o = json.createObjectNode();
    o.put("checkpoint", source);
    o.put("model_type", config.modelType());
    o.put("num_hidden_layers", config.numHiddenLayers());
    o.put("hidden_size", config.hiddenSize());
    o.put("num_attention_heads", config.numAttentionHeads());
    o.put("intermediate_size", config.intermediateSize());
    o.put("vocab_size", config.vocabSize());
    o.put("max_position_embeddings", config.maxPositionEmbeddings());
    o.put("num_labels", config.numLabels());
    o.put("has_pooler", hasPooler);
    o.put("has_classifier", hasClassifier);
    o.put("tensors", tensorCount);
    o.put("parameters", parameters);
    o.put("encoder_linear_weights", encoderLinearWeights);
    o.put("encoder_linear_zeros", encoderLinearZeros);
    o.put("encoder_linear_sparsity", encoderLinearSparsity());
    ArrayNode arr = o.putArray("matrices");
    for (Matrix m : matrices) {
      ObjectNode mo = arr.addObject();
      mo.put("name", m.name());
      ArrayNode shape = mo.putArray("shape");
      Arrays.stream(m.shape()).forEach(shape::add);
      mo.put("sparsity", m.sparsity());
    }
    if (!config.prunedHeads().isEmpty()) {
      ObjectNode ph = o.putObject("pruned_heads");
      config
          .prunedHeads()
          .forEach(
              (l, hs) -> {
                ArrayNode a = ph.putArray(Integer.toString(l));
                hs.forEach(a::add);
              });
    }
    ArrayNode ls = o.putArray("layers");
    for (Layer l : layers) {
      ObjectNode lo = ls.addObject();
      lo.put("layer", l.index());
      lo.put("heads", l.heads());
      lo.put("heads_kept", l.headsKept());
      lo.put("intermediate_size", l.neurons());
      lo.put("neurons_kept", l.neuronsKept());
    }
    try {
      return json.writerWithDefaultPrettyPrinter().writeValueAsString(o);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  public String toText() {
    StringBuilder sb = new StringBuilder();
    String[][] summary = {
      {"checkpoint", source},
      {"model_type", config.modelType()},
      {"layers", Integer.toString(config.numHiddenLayers())},
      {"hidden_size", Integer.toString(config.hiddenSize())},
      {"attention_heads", config.numAttentionHeads() + " (head size " + config.headDim() + ")"},
      {
        "intermediate_size",
        config.layerIntermediateSizes().isEmpty()
            ? Integer.toString(config.intermediateSize())
            : "per layer " + config.layerIntermediateSizes() + " (cap_intermediate_sizes)"
      },
      {"pruned_heads", config.prunedHeads().isEmpty() ? "none" : config.prunedHeads().toString()},
      {"vocab_size", Integer.toString(config.vocabSize())},
      {"pooler", hasPooler ? "yes" : "no"},
      {"classifier", hasClassifier ? "yes (" + config.numLabels() + " labels)" : "no"},
      {"parameters", String.format(Locale.ROOT, "%,d in %d tensors", parameters, tensorCount)},
      {
        "encoder linear",
        String.format(
            Locale.ROOT,
            "%,d weights, %,d zero, sparsity %s",
            encoderLinearWeights,
            encoderLinearZeros,
            percent(encoderLinearSparsity()))
      },
    };
    int keyWidth = Arrays.stream(summary).mapToInt(r -> r[0].length()).max().orElse(0);
    for (String[] row : summary) {
      sb.append(String.format(Locale.ROOT, "%-" + keyWidth + "s  %s%n", row[0], row[1]));
    }
    sb.append(System.lineSeparator());
    int nameWidth = "matrix".length();
    int shapeWidth = "shape".length();
    for (Matrix m : matrices) {
      nameWidth = Math.max(nameWidth, m.name().length());
      shapeWidth = Math.max(shapeWidth, shape(m).length());
    }
    // Heads out of num_attention_heads (the original count); neurons out of the layer's width.
    sb.append(
        String.format(
            Locale.ROOT, "%-5s  %14s  %20s%n", "layer", "heads kept", "FFN neurons kept"));
    for (Layer l : layers) {
      sb.append(
          String.format(
              Locale.ROOT,
              "%-5d  %14s  %20s%n",
              l.index(),
              l.headsKept() + " / " + config.numAttentionHeads(),
              l.neuronsKept() + " / " + l.neurons()));
    }
    sb.append(System.lineSeparator());
    String row = "%-" + nameWidth + "s  %" + shapeWidth + "s  %9s%n";
    sb.append(String.format(Locale.ROOT, row, "matrix", "shape", "sparsity"));
    for (Matrix m : matrices) {
      sb.append(String.format(Locale.ROOT, row, m.name(), shape(m), percent(m.sparsity())));
    }
    return sb.toString();
  }

  private static String shape(Matrix m) {
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < m.shape().length; i++) {
      s.append(i == 0 ? "" : " x ").append(m.shape()[i]);
    }
    return s.toString();
  }

  private static String percent(double fraction) {
    return String.format(Locale.ROOT, "%.2f%%", 100 * fraction);
  }

  /** The CLI entry; errors go to {@code System.err}. */
  public static int run(String[] args, PrintStream out) {
    return run(args, out, System.err, new Configuration());
  }

  /**
   * @return 0 on success, 1 when the checkpoint cannot be read, 2 on a usage error
   */
  public static int run(String[] args, PrintStream out, PrintStream err, Configuration conf) {
    String location = null;
    boolean asJson = false;
    for (String a : args) {
      if (a.equals("--json")) {
        asJson = true;
      } else if (a.equals("-h") || a.equals("--help")) {
        out.println(USAGE);
        return 0;
      } else if (a.startsWith("-")) {
        err.println("inspect: unknown option '" + a + "'");
        err.println(USAGE);
        return 2;
      } else if (location != null) {
        err.println("inspect: more than one checkpoint given ('" + location + "', '" + a + "')");
        err.println(USAGE);
        return 2;
      } else {
        location = a;
      }
    }
    if (location == null) {
      err.println("inspect: no checkpoint given");
      err.println(USAGE);
      return 2;
    }
    ModelInspection report;
    try {
      report = of(CheckpointStore.read(location, conf));
    } catch (CheckpointException e) {
      err.println("inspect: " + e.getMessage());
      return 1;
    } catch (IOException e) {
      err.println("inspect: cannot read " + location + ": " + e);
      return 1;
    }
    out.print(asJson ? report.toJson() + System.lineSeparator() : report.toText());
    return 0;
  }
}
