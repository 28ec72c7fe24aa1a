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
public record ModelInspection(String source, BertConfig config, int tensorCount, long parameters,
    long encoderLinearWeights, long encoderLinearZeros, boolean hasPooler, boolean hasClassifier,
    List<Matrix> matrices) {

  public static final String USAGE = "usage: cap-prune inspect <checkpoint-dir-or-URI> [--json]";

  public ModelInspection {
    matrices = List.copyOf(matrices);
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
    return new ModelInspection(ckpt.source(), ckpt.config(), ckpt.tensors().size(), ckpt.parameterCount(),
        weights, zeros, ckpt.hasPooler(), ckpt.hasClassifier(), matrices);
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
        {"intermediate_size", Integer.toString(config.intermediateSize())},
        {"vocab_size", Integer.toString(config.vocabSize())},
        {"pooler", hasPooler ? "yes" : "no"},
        {"classifier", hasClassifier ? "yes (" + config.numLabels() + " labels)" : "no"},
        {"parameters", String.format(Locale.ROOT, "%,d in %d tensors", parameters, tensorCount)},
        {"encoder linear", String.format(Locale.ROOT, "%,d weights, %,d zero, sparsity %s",
            encoderLinearWeights, encoderLinearZeros, percent(encoderLinearSparsity()))},
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
