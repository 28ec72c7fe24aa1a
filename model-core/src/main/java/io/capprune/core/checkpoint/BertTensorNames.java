package io.capprune.core.checkpoint;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * The parameter names of {@code transformers.BertForSequenceClassification}, without the {@code
 * bert.} prefix that Hugging Face puts before the encoder: this is the project's in-memory naming
 * ({@code encoder.layer.0.attention.self.query.weight}, {@code classifier.weight}).
 */
public final class BertTensorNames {

  public static final String EXPORT_PREFIX = "bert.";

  private BertTensorNames() {}

  public static String layer(int i) {
    return "encoder.layer." + i + ".";
  }

  /**
   * Every tensor the forward pass needs, with its shape, in {@code modeling_bert.py} order. Pooler
   * and classifier are not here: MiniLM-style encoders have no pooler, and a pre-trained checkpoint
   * has no classifier.
   */
  public static LinkedHashMap<String, int[]> required(BertConfig c) {
    int h = c.hiddenSize();
    LinkedHashMap<String, int[]> m = new LinkedHashMap<>();
    m.put("embeddings.word_embeddings.weight", new int[] {c.vocabSize(), h});
    m.put("embeddings.position_embeddings.weight", new int[] {c.maxPositionEmbeddings(), h});
    m.put("embeddings.token_type_embeddings.weight", new int[] {c.typeVocabSize(), h});
    m.put("embeddings.LayerNorm.weight", new int[] {h});
    m.put("embeddings.LayerNorm.bias", new int[] {h});
    for (int i = 0; i < c.numHiddenLayers(); i++) {
      String p = layer(i);
      // Structured pruning removes heads and FFN neurons per layer (pruned_heads,
      // cap_intermediate_sizes).
      int attn = c.headsInLayer(i) * c.headDim();
      int ffn = c.intermediateSizeOf(i);
      for (String qkv : new String[] {"query", "key", "value"}) {
        m.put(p + "attention.self." + qkv + ".weight", new int[] {attn, h});
        m.put(p + "attention.self." + qkv + ".bias", new int[] {attn});
      }
      m.put(p + "attention.output.dense.weight", new int[] {h, attn});
      m.put(p + "attention.output.dense.bias", new int[] {h});
      m.put(p + "attention.output.LayerNorm.weight", new int[] {h});
      m.put(p + "attention.output.LayerNorm.bias", new int[] {h});
      m.put(p + "intermediate.dense.weight", new int[] {ffn, h});
      m.put(p + "intermediate.dense.bias", new int[] {ffn});
      m.put(p + "output.dense.weight", new int[] {h, ffn});
      m.put(p + "output.dense.bias", new int[] {h});
      m.put(p + "output.LayerNorm.weight", new int[] {h});
      m.put(p + "output.LayerNorm.bias", new int[] {h});
    }
    return m;
  }

  /** {@code pooler.*}: optional, but complete and of these shapes when present. */
  public static LinkedHashMap<String, int[]> pooler(BertConfig c) {
    LinkedHashMap<String, int[]> m = new LinkedHashMap<>();
    m.put("pooler.dense.weight", new int[] {c.hiddenSize(), c.hiddenSize()});
    m.put("pooler.dense.bias", new int[] {c.hiddenSize()});
    return m;
  }

  /** {@code classifier.*}: optional, but complete and of these shapes when present. */
  public static LinkedHashMap<String, int[]> classifier(BertConfig c) {
    LinkedHashMap<String, int[]> m = new LinkedHashMap<>();
    m.put("classifier.weight", new int[] {c.numLabels(), c.hiddenSize()});
    m.put("classifier.bias", new int[] {c.numLabels()});
    return m;
  }

  /**
   * The encoder's Linear weight matrices, the ones CAP prunes: query, key, value,
   * attention.output.dense, intermediate.dense and output.dense of every layer (no biases, no
   * LayerNorm, no embeddings, no pooler).
   */
  public static List<String> encoderLinearWeights(BertConfig c) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < c.numHiddenLayers(); i++) {
      String p = layer(i);
      out.add(p + "attention.self.query.weight");
      out.add(p + "attention.self.key.weight");
      out.add(p + "attention.self.value.weight");
      out.add(p + "attention.output.dense.weight");
      out.add(p + "intermediate.dense.weight");
      out.add(p + "output.dense.weight");
    }
    return out;
  }

  /**
   * A Hugging Face file name to the in-memory name: drops the {@code bert.} prefix and maps the
   * TF-era LayerNorm names {@code gamma}/{@code beta} to {@code weight}/{@code bias}, as {@code
   * transformers} does on load.
   */
  public static String canonical(String fileName) {
    String n =
        fileName.startsWith(EXPORT_PREFIX) ? fileName.substring(EXPORT_PREFIX.length()) : fileName;
    if (n.endsWith("LayerNorm.gamma")) {
      n = n.substring(0, n.length() - "gamma".length()) + "weight";
    } else if (n.endsWith("LayerNorm.beta")) {
      n = n.substring(0, n.length() - "beta".length()) + "bias";
    }
    return n;
  }

  /** The in-memory name to the name BertForSequenceClassification stores. */
  public static String exported(String canonical) {
    return canonical.startsWith("embeddings.")
            || canonical.startsWith("encoder.")
            || canonical.startsWith("pooler.")
        ? EXPORT_PREFIX + canonical
        : canonical;
  }

  /**
   * Tensors some checkpoints carry that sequence classification does not use: the pre-training
   * heads of {@code BertForPreTraining} / {@code BertForMaskedLM} and the {@code position_ids}
   * buffer (int64) that older transformers saved. They are skipped on read, not decoded.
   */
  public static boolean ignored(String canonicalName) {
    return canonicalName.startsWith("cls.") || canonicalName.equals("embeddings.position_ids");
  }
}
