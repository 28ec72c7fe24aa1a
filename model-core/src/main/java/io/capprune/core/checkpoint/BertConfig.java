package io.capprune.core.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The subset of a Hugging Face {@code config.json} that BERT's forward pass needs, validated. Names
 * follow {@code transformers.BertConfig}.
 *
 * @param numLabels classifier outputs; 1 means regression (STS-B)
 * @param labels label names in classifier order (id2label), may be empty when unknown
 * @param prunedHeads structured pruning: original head indices removed per layer (Hugging Face's
 *     {@code pruned_heads}); the layer's Q/K/V rows and attention-output columns of those heads are
 *     physically absent, the remaining heads keep their order. Empty for an unpruned model.
 * @param layerIntermediateSizes structured pruning: FFN width of every layer when the layers differ
 *     (key {@code cap_intermediate_sizes}, see docs/structured.md); empty when every layer has
 *     {@code intermediate_size}
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
    List<String> labels,
    Map<Integer, List<Integer>> prunedHeads,
    List<Integer> layerIntermediateSizes)
    implements Serializable {

  /**
   * A builder that starts from {@code transformers.BertConfig()}'s defaults (BERT-base: vocabulary
   * 30522, hidden 768, 12 layers of 12 heads, FFN 3072, GELU, dropout 0.1, 512 positions, 2 token
   * types, LayerNorm eps 1e-12) with 2 labels, no label names and no structured pruning.
   */
  public static Builder builder() {
    return new Builder();
  }

  /** A builder holding every value of this configuration. */
  public Builder toBuilder() {
    return new Builder()
        .modelType(modelType)
        .vocabSize(vocabSize)
        .hiddenSize(hiddenSize)
        .numHiddenLayers(numHiddenLayers)
        .numAttentionHeads(numAttentionHeads)
        .intermediateSize(intermediateSize)
        .hiddenAct(hiddenAct)
        .hiddenDropoutProb(hiddenDropoutProb)
        .attentionProbsDropoutProb(attentionProbsDropoutProb)
        .maxPositionEmbeddings(maxPositionEmbeddings)
        .typeVocabSize(typeVocabSize)
        .layerNormEps(layerNormEps)
        .numLabels(numLabels)
        .labels(labels)
        .prunedHeads(prunedHeads)
        .layerIntermediateSizes(layerIntermediateSizes);
  }

  /** Named values for {@link BertConfig}; {@link #build} validates them as the constructor does. */
  public static final class Builder {
    private String modelType = "bert";
    private int vocabSize = 30522;
    private int hiddenSize = 768;
    private int numHiddenLayers = 12;
    private int numAttentionHeads = 12;
    private int intermediateSize = 3072;
    private String hiddenAct = "gelu";
    private float hiddenDropoutProb = 0.1f;
    private float attentionProbsDropoutProb = 0.1f;
    private int maxPositionEmbeddings = 512;
    private int typeVocabSize = 2;
    private float layerNormEps = 1e-12f;
    private int numLabels = 2;
    private List<String> labels = List.of();
    private Map<Integer, List<Integer>> prunedHeads = Map.of();
    private List<Integer> layerIntermediateSizes = List.of();

    private Builder() {}

    public Builder modelType(String v) {
      modelType = v;
      return this;
    }

    public Builder vocabSize(int v) {
      vocabSize = v;
      return this;
    }

    public Builder hiddenSize(int v) {
      hiddenSize = v;
      return this;
    }

    public Builder numHiddenLayers(int v) {
      numHiddenLayers = v;
      return this;
    }

    public Builder numAttentionHeads(int v) {
      numAttentionHeads = v;
      return this;
    }

    public Builder intermediateSize(int v) {
      intermediateSize = v;
      return this;
    }

    public Builder hiddenAct(String v) {
      hiddenAct = v;
      return this;
    }

    public Builder hiddenDropoutProb(float v) {
      hiddenDropoutProb = v;
      return this;
    }

    public Builder attentionProbsDropoutProb(float v) {
      attentionProbsDropoutProb = v;
      return this;
    }

    /**
     * Both dropout probabilities, hidden and attention; 0 makes training forwards deterministic.
     */
    public Builder dropout(float v) {
      return hiddenDropoutProb(v).attentionProbsDropoutProb(v);
    }

    public Builder maxPositionEmbeddings(int v) {
      maxPositionEmbeddings = v;
      return this;
    }

    public Builder typeVocabSize(int v) {
      typeVocabSize = v;
      return this;
    }

    public Builder layerNormEps(float v) {
      layerNormEps = v;
      return this;
    }

    public Builder numLabels(int v) {
      numLabels = v;
      return this;
    }

    public Builder labels(List<String> v) {
      labels = v;
      return this;
    }

    public Builder prunedHeads(Map<Integer, List<Integer>> v) {
      prunedHeads = v;
      return this;
    }

    public Builder layerIntermediateSizes(List<Integer> v) {
      layerIntermediateSizes = v;
      return this;
    }

    public BertConfig build() {
      return new BertConfig(
          modelType,
          vocabSize,
          hiddenSize,
          numHiddenLayers,
          numAttentionHeads,
          intermediateSize,
          hiddenAct,
          hiddenDropoutProb,
          attentionProbsDropoutProb,
          maxPositionEmbeddings,
          typeVocabSize,
          layerNormEps,
          numLabels,
          labels,
          prunedHeads,
          layerIntermediateSizes);
    }
  }

  public static final Set<String> SUPPORTED_MODEL_TYPES = Set.of("bert");
  public static final Set<String> SUPPORTED_ACTIVATIONS = Set.of("gelu");

  public BertConfig {
    labels = labels == null ? List.of() : List.copyOf(labels);
    prunedHeads = normalisePrunedHeads(prunedHeads, numHiddenLayers, numAttentionHeads);
    layerIntermediateSizes =
        layerIntermediateSizes == null ? List.of() : List.copyOf(layerIntermediateSizes);
    requireKey(
        layerIntermediateSizes.isEmpty() || layerIntermediateSizes.size() == numHiddenLayers,
        "cap_intermediate_sizes",
        "has "
            + layerIntermediateSizes.size()
            + " entries but num_hidden_layers is "
            + numHiddenLayers);
    for (int v : layerIntermediateSizes) {
      requireKey(
          v > 0, "cap_intermediate_sizes", "every layer needs at least one FFN neuron, got " + v);
    }
    requireKey(
        SUPPORTED_MODEL_TYPES.contains(modelType),
        "model_type",
        "unsupported model_type '" + modelType + "' (supported: " + SUPPORTED_MODEL_TYPES + ")");
    requireKey(
        SUPPORTED_ACTIVATIONS.contains(hiddenAct),
        "hidden_act",
        "unsupported hidden_act '" + hiddenAct + "' (supported: " + SUPPORTED_ACTIVATIONS + ")");
    requirePositive(vocabSize, "vocab_size");
    requirePositive(hiddenSize, "hidden_size");
    requirePositive(numHiddenLayers, "num_hidden_layers");
    requirePositive(numAttentionHeads, "num_attention_heads");
    requirePositive(intermediateSize, "intermediate_size");
    requirePositive(maxPositionEmbeddings, "max_position_embeddings");
    requirePositive(typeVocabSize, "type_vocab_size");
    requirePositive(numLabels, "num_labels");
    requireKey(
        hiddenSize % numAttentionHeads == 0,
        "hidden_size",
        "hidden_size "
            + hiddenSize
            + " is not divisible by num_attention_heads "
            + numAttentionHeads);
    requireKey(
        hiddenDropoutProb >= 0 && hiddenDropoutProb < 1,
        "hidden_dropout_prob",
        "hidden_dropout_prob must be in [0, 1), got " + hiddenDropoutProb);
    requireKey(
        attentionProbsDropoutProb >= 0 && attentionProbsDropoutProb < 1,
        "attention_probs_dropout_prob",
        "attention_probs_dropout_prob must be in [0, 1), got " + attentionProbsDropoutProb);
    requireKey(
        layerNormEps > 0, "layer_norm_eps", "layer_norm_eps must be > 0, got " + layerNormEps);
    requireKey(
        labels.isEmpty() || labels.size() == numLabels,
        "id2label",
        "id2label has " + labels.size() + " entries but num_labels is " + numLabels);
  }

  public int headDim() {
    return hiddenSize / numAttentionHeads;
  }

  /** Heads physically present in layer {@code layer} (all minus the pruned ones). */
  public int headsInLayer(int layer) {
    return numAttentionHeads - prunedHeads.getOrDefault(layer, List.of()).size();
  }

  /** FFN width of layer {@code layer}. */
  public int intermediateSizeOf(int layer) {
    return layerIntermediateSizes.isEmpty() ? intermediateSize : layerIntermediateSizes.get(layer);
  }

  /** Whether heads or neurons were physically removed. */
  public boolean isStructurallyPruned() {
    return !prunedHeads.isEmpty()
        || !layerIntermediateSizes.isEmpty()
            && layerIntermediateSizes.stream().anyMatch(v -> v != intermediateSize);
  }

  public BertConfig withLabels(List<String> newLabels) {
    int n = newLabels.isEmpty() ? numLabels : newLabels.size();
    return toBuilder().numLabels(n).labels(newLabels).build();
  }

  public BertConfig withNumLabels(int n) {
    return toBuilder().numLabels(n).labels(List.of()).build();
  }

  /**
   * The configuration after removing heads and neurons. {@code intermediateSizes} holds every
   * layer's FFN width: when all are equal they become {@code intermediate_size} (what Hugging Face
   * expects), otherwise {@code intermediate_size} keeps the original width and the per-layer list
   * is written as {@code cap_intermediate_sizes}.
   */
  public BertConfig withStructure(
      Map<Integer, List<Integer>> newPrunedHeads, int[] intermediateSizes) {
    if (intermediateSizes.length != numHiddenLayers) {
      throw new IllegalArgumentException(
          "intermediate sizes for "
              + intermediateSizes.length
              + " layers, the model has "
              + numHiddenLayers);
    }
    boolean equal =
        java.util.Arrays.stream(intermediateSizes).allMatch(v -> v == intermediateSizes[0]);
    List<Integer> perLayer = new ArrayList<>();
    for (int v : intermediateSizes) {
      perLayer.add(v);
    }
    return toBuilder()
        .intermediateSize(equal ? intermediateSizes[0] : intermediateSize)
        .prunedHeads(newPrunedHeads)
        .layerIntermediateSizes(equal ? List.of() : perLayer)
        .build();
  }

  private static Map<Integer, List<Integer>> normalisePrunedHeads(
      Map<Integer, List<Integer>> given, int layers, int heads) {
    if (given == null || given.isEmpty()) {
      return Map.of();
    }
    TreeMap<Integer, List<Integer>> out = new TreeMap<>();
    for (Map.Entry<Integer, List<Integer>> e : given.entrySet()) {
      int layer = e.getKey();
      requireKey(
          layer >= 0 && layer < layers,
          "pruned_heads",
          "layer " + layer + " is not in 0.." + (layers - 1));
      TreeSet<Integer> set = new TreeSet<>(e.getValue());
      for (int h : set) {
        requireKey(
            h >= 0 && h < heads,
            "pruned_heads",
            "layer " + layer + ": head " + h + " is not in 0.." + (heads - 1));
      }
      requireKey(
          set.size() < heads, "pruned_heads", "layer " + layer + " prunes all " + heads + " heads");
      if (!set.isEmpty()) {
        out.put(layer, List.copyOf(set));
      }
    }
    return java.util.Collections.unmodifiableMap(out);
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
      int numLabels =
          root.has("num_labels")
              ? intKey(root, "num_labels", source)
              : labels.isEmpty() ? 2 : labels.size();
      // The keys are read in this order, so the first bad one is the one reported.
      return builder()
          .modelType(stringKey(root, "model_type", source))
          .vocabSize(intKey(root, "vocab_size", source))
          .hiddenSize(intKey(root, "hidden_size", source))
          .numHiddenLayers(intKey(root, "num_hidden_layers", source))
          .numAttentionHeads(intKey(root, "num_attention_heads", source))
          .intermediateSize(intKey(root, "intermediate_size", source))
          .hiddenAct(root.has("hidden_act") ? stringKey(root, "hidden_act", source) : "gelu")
          .hiddenDropoutProb(floatKey(root, "hidden_dropout_prob", 0.1f, source))
          .attentionProbsDropoutProb(floatKey(root, "attention_probs_dropout_prob", 0.1f, source))
          .maxPositionEmbeddings(intKey(root, "max_position_embeddings", source))
          .typeVocabSize(root.has("type_vocab_size") ? intKey(root, "type_vocab_size", source) : 2)
          .layerNormEps(floatKey(root, "layer_norm_eps", 1e-12f, source))
          .numLabels(numLabels)
          .labels(labels)
          .prunedHeads(readPrunedHeads(root))
          .layerIntermediateSizes(readIntList(root, "cap_intermediate_sizes"))
          .build();
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
    if (!prunedHeads.isEmpty()) {
      ObjectNode ph = o.putObject("pruned_heads");
      prunedHeads.forEach(
          (layer, hs) -> {
            var arr = ph.putArray(Integer.toString(layer));
            hs.forEach(arr::add);
          });
    }
    if (!layerIntermediateSizes.isEmpty()) {
      var arr = o.putArray("cap_intermediate_sizes");
      layerIntermediateSizes.forEach(arr::add);
    }
    o.put("torch_dtype", "float32");
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n";
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static Map<Integer, List<Integer>> readPrunedHeads(JsonNode root) {
    JsonNode n = root.get("pruned_heads");
    if (n == null || n.isNull()) {
      return Map.of();
    }
    if (!n.isObject()) {
      throw new InvalidKeyException(
          "pruned_heads", "expected an object of layer -> [heads], got " + n);
    }
    TreeMap<Integer, List<Integer>> out = new TreeMap<>();
    var it = n.fields();
    while (it.hasNext()) {
      var e = it.next();
      int layer;
      try {
        layer = Integer.parseInt(e.getKey());
      } catch (NumberFormatException ex) {
        throw new InvalidKeyException(
            "pruned_heads", "layer '" + e.getKey() + "' is not an integer");
      }
      if (!e.getValue().isArray()) {
        throw new InvalidKeyException(
            "pruned_heads", "layer " + layer + ": expected a list of heads");
      }
      List<Integer> heads = new ArrayList<>();
      for (JsonNode h : e.getValue()) {
        if (!h.isIntegralNumber()) {
          throw new InvalidKeyException(
              "pruned_heads", "layer " + layer + ": head " + h + " is not an integer");
        }
        heads.add(h.intValue());
      }
      out.put(layer, heads);
    }
    return out;
  }

  private static List<Integer> readIntList(JsonNode root, String key) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) {
      return List.of();
    }
    if (!n.isArray()) {
      throw new InvalidKeyException(key, "expected a list of integers, got " + n);
    }
    List<Integer> out = new ArrayList<>();
    for (JsonNode v : n) {
      if (!v.isIntegralNumber()) {
        throw new InvalidKeyException(key, "expected integers, got " + v);
      }
      out.add(v.intValue());
    }
    return out;
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
        throw new InvalidKeyException(
            "id2label", "label id '" + e.getKey() + "' is not an integer");
      }
      if (id < 0 || id >= out.length || out[id] != null) {
        throw new InvalidKeyException(
            "id2label",
            "label ids must be 0.."
                + (out.length - 1)
                + " without gaps, found '"
                + e.getKey()
                + "'");
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
