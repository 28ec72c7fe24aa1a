package io.capprune.core.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.Serializable;
import java.util.List;
import java.util.Set;

/**
 * The subset of a Hugging Face {@code config.json} that BERT's forward pass needs, validated.
 * Names follow {@code transformers.BertConfig}.
 *
 * @param numLabels classifier outputs; 1 means regression (STS-B)
 * @param labels label names in classifier order (id2label), may be empty when unknown
 */
public record BertConfig(
    String modelType,
    int vocabSize,
    int hiddenSize,
    int numHiddenLayers,
    int numAttentionHeads,
    int intermediateSize,
    String hiddenAct,
    float hiddenDropoutProb,
    float attentionProbsDropoutProb,
    int maxPositionEmbeddings,
    int typeVocabSize,
    float layerNormEps,
    int numLabels,
    List<String> labels)
    implements Serializable {

  public static final Set<String> SUPPORTED_MODEL_TYPES = Set.of("bert");
  public static final Set<String> SUPPORTED_ACTIVATIONS = Set.of("gelu");

  public BertConfig {
    labels = labels == null ? List.of() : List.copyOf(labels);
    requireKey(SUPPORTED_MODEL_TYPES.contains(modelType), "model_type",
        "unsupported model_type '" + modelType + "' (supported: " + SUPPORTED_MODEL_TYPES + ")");
    requireKey(SUPPORTED_ACTIVATIONS.contains(hiddenAct), "hidden_act",
        "unsupported hidden_act '" + hiddenAct + "' (supported: " + SUPPORTED_ACTIVATIONS + ")");
    requirePositive(vocabSize, "vocab_size");
    requirePositive(hiddenSize, "hidden_size");
    requirePositive(numHiddenLayers, "num_hidden_layers");
    requirePositive(numAttentionHeads, "num_attention_heads");
    requirePositive(intermediateSize, "intermediate_size");
    requirePositive(maxPositionEmbeddings, "max_position_embeddings");
    requirePositive(typeVocabSize, "type_vocab_size");
    requirePositive(numLabels, "num_labels");
    requireKey(hiddenSize % numAttentionHeads == 0, "hidden_size",
        "hidden_size " + hiddenSize + " is not divisible by num_attention_heads " + numAttentionHeads);
    requireKey(hiddenDropoutProb >= 0 && hiddenDropoutProb < 1, "hidden_dropout_prob",
        "hidden_dropout_prob must be in [0, 1), got " + hiddenDropoutProb);
    requireKey(attentionProbsDropoutProb >= 0 && attentionProbsDropoutProb < 1,
        "attention_probs_dropout_prob",
        "attention_probs_dropout_prob must be in [0, 1), got " + attentionProbsDropoutProb);
    requireKey(layerNormEps > 0, "layer_norm_eps", "layer_norm_eps must be > 0, got " + layerNormEps);
    requireKey(labels.isEmpty() || labels.size() == numLabels, "id2label",
        "id2label has " + labels.size() + " entries but num_labels is " + numLabels);
  }

  public int headDim() {
    return hiddenSize / numAttentionHeads;
  }

  public BertConfig withLabels(List<String> newLabels) {
    int n = newLabels.isEmpty() ? numLabels : newLabels.size();
    return new BertConfig(modelType, vocabSize, hiddenSize, numHiddenLayers, numAttentionHeads,
        intermediateSize, hiddenAct, hiddenDropoutProb, attentionProbsDropoutProb,
        maxPositionEmbeddings, typeVocabSize, layerNormEps, n, newLabels);
  }

  public BertConfig withNumLabels(int n) {
    return new BertConfig(modelType, vocabSize, hiddenSize, numHiddenLayers, numAttentionHeads,
        intermediateSize, hiddenAct, hiddenDropoutProb, attentionProbsDropoutProb,
        maxPositionEmbeddings, typeVocabSize, layerNormEps, n, List.of());
  }

  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * Parses and validates {@code config.json}.
   *
   * @param source a name for error messages (the file path or URI)
   */
  public static BertConfig parse(String json, String source) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (IOException e) {
      throw new CheckpointException(source + ": not valid JSON: " + e.getMessage());
    }
    if (root == null || !root.isObject()) {
      throw new CheckpointException(source + ": expected a JSON object");
    }
    try {
      List<String> labels = readLabels(root, source);
      int numLabels = root.has("num_labels") ? intKey(root, "num_labels", source)
          : labels.isEmpty() ? 2 : labels.size();
      return new BertConfig(
          stringKey(root, "model_type", source),
          intKey(root, "vocab_size", source),
          intKey(root, "hidden_size", source),
          intKey(root, "num_hidden_layers", source),
          intKey(root, "num_attention_heads", source),
          intKey(root, "intermediate_size", source),
          root.has("hidden_act") ? stringKey(root, "hidden_act", source) : "gelu",
          floatKey(root, "hidden_dropout_prob", 0.1f, source),
          floatKey(root, "attention_probs_dropout_prob", 0.1f, source),
          intKey(root, "max_position_embeddings", source),
          root.has("type_vocab_size") ? intKey(root, "type_vocab_size", source) : 2,
          floatKey(root, "layer_norm_eps", 1e-12f, source),
          numLabels,
          labels);
    } catch (InvalidKeyException e) {
      throw new CheckpointException(source + ": " + e.getMessage(), e);
    }
  }

  /** Writes the Hugging Face {@code config.json} of a BertForSequenceClassification. */
  public String toJson() {
    ObjectNode o = JSON.createObjectNode();
    o.putArray("architectures").add("BertForSequenceClassification");
    o.put("model_type", modelType);
    o.put("vocab_size", vocabSize);
    o.put("hidden_size", hiddenSize);
    o.put("num_hidden_layers", numHiddenLayers);
    o.put("num_attention_heads", numAttentionHeads);
    o.put("intermediate_size", intermediateSize);
    o.put("hidden_act", hiddenAct);
    o.put("hidden_dropout_prob", hiddenDropoutProb);
    o.put("attention_probs_dropout_prob", attentionProbsDropoutProb);
    o.put("max_position_embeddings", maxPositionEmbeddings);
    o.put("type_vocab_size", typeVocabSize);
    o.put("layer_norm_eps", layerNormEps);
    o.put("initializer_range", 0.02);
    o.put("pad_token_id", 0);
    o.put("position_embedding_type", "absolute");
    o.put("num_labels", numLabels);
    if (numLabels == 1) {
      o.put("problem_type", "regression");
    }
    if (!labels.isEmpty()) {
      ObjectNode id2label = o.putObject("id2label");
      ObjectNode label2id = o.putObject("label2id");
      for (int i = 0; i < labels.size(); i++) {
        id2label.put(Integer.toString(i), labels.get(i));
        label2id.put(labels.get(i), i);
      }
    }
    o.put("torch_dtype", "float32");
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n";
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static List<String> readLabels(JsonNode root, String source) {
    JsonNode id2label = root.get("id2label");
    if (id2label == null || !id2label.isObject() || id2label.isEmpty()) {
      return List.of();
    }
    String[] out = new String[id2label.size()];
    var it = id2label.fields();
    while (it.hasNext()) {
      var e = it.next();
      int id;
      try {
        id = Integer.parseInt(e.getKey());
      } catch (NumberFormatException ex) {
        throw new InvalidKeyException("id2label", "label id '" + e.getKey() + "' is not an integer");
      }
      if (id < 0 || id >= out.length || out[id] != null) {
        throw new InvalidKeyException("id2label", "label ids must be 0.." + (out.length - 1)
            + " without gaps, found '" + e.getKey() + "'");
      }
      out[id] = e.getValue().asText();
    }
    // transformers writes LABEL_0, LABEL_1 ... when the checkpoint has no real label names.
    boolean generic = true;
    for (int i = 0; i < out.length; i++) {
      generic &= out[i].equals("LABEL_" + i);
    }
    return generic ? List.of() : List.of(out);
  }

  private static String stringKey(JsonNode root, String key, String source) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) {
      throw new InvalidKeyException(key, "missing");
    }
    if (!n.isTextual()) {
      throw new InvalidKeyException(key, "expected a string, got " + n);
    }
    return n.asText();
  }

  private static int intKey(JsonNode root, String key, String source) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) {
      throw new InvalidKeyException(key, "missing");
    }
    if (!n.isIntegralNumber() || !n.canConvertToInt()) {
      throw new InvalidKeyException(key, "expected an integer, got " + n);
    }
    return n.intValue();
  }

  private static float floatKey(JsonNode root, String key, float dflt, String source) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) {
      return dflt;
    }
    if (!n.isNumber()) {
      throw new InvalidKeyException(key, "expected a number, got " + n);
    }
    return n.floatValue();
  }

  private static void requirePositive(int v, String key) {
    requireKey(v > 0, key, key + " must be > 0, got " + v);
  }

  private static void requireKey(boolean ok, String key, String message) {
    if (!ok) {
      throw new InvalidKeyException(key, message);
    }
  }

  /** A config value that is missing or wrong; the message names the key. */
  public static final class InvalidKeyException extends CheckpointException {
    private static final long serialVersionUID = 1L;
    public final String key;

    InvalidKeyException(String key, String message) {
      super("config key '" + key + "': " + message);
      this.key = key;
    }
  }
}
