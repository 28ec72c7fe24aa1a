package io.capprune.core.checkpoint;

import io.capprune.core.tensor.HostTensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A BERT checkpoint in memory, checked against its config: every tensor the config implies is
 * present with the right shape, and the optional pooler and classifier are complete when present.
 * Built by {@link CheckpointStore#read} or from trained weights before {@link
 * CheckpointStore#write}.
 *
 * @param source where it came from (path or URI), for messages
 * @param tensors in-memory names ({@link BertTensorNames}), in file order
 * @param vocab WordPiece vocabulary by id
 */
public record HfCheckpoint(
    String source, BertConfig config, Map<String, HostTensor> tensors, List<String> vocab) {

  public HfCheckpoint {
    tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
    vocab = List.copyOf(vocab);
    check(source, config, tensors, vocab);
  }

  public HostTensor tensor(String name) {
    HostTensor t = tensors.get(name);
    if (t == null) {
      throw new CheckpointException(source + ": no tensor '" + name + "'");
    }
    return t;
  }

  public boolean hasPooler() {
    return tensors.containsKey("pooler.dense.weight");
  }

  public boolean hasClassifier() {
    return tensors.containsKey("classifier.weight");
  }

  /** Total elements of all tensors. */
  public long parameterCount() {
    long n = 0;
    for (HostTensor t : tensors.values()) {
      n += t.numel();
    }
    return n;
  }

  private static void check(
      String source, BertConfig config, Map<String, HostTensor> tensors, List<String> vocab) {
    checkShapes(source, BertTensorNames.required(config), tensors, true);
    checkShapes(
        source,
        BertTensorNames.pooler(config),
        tensors,
        anyPresent(BertTensorNames.pooler(config), tensors));
    checkShapes(
        source,
        BertTensorNames.classifier(config),
        tensors,
        anyPresent(BertTensorNames.classifier(config), tensors));
    Set<String> known = new HashSet<>(BertTensorNames.required(config).keySet());
    known.addAll(BertTensorNames.pooler(config).keySet());
    known.addAll(BertTensorNames.classifier(config).keySet());
    for (String name : tensors.keySet()) {
      if (!known.contains(name)) {
        throw new CheckpointException(
            source
                + ": unexpected tensor '"
                + name
                + "': not a parameter of"
                + " BertForSequenceClassification with this config.json (other architecture, more layers,"
                + " or another position_embedding_type?)");
      }
    }
    if (vocab.isEmpty()) {
      throw new CheckpointException(source + ": empty vocabulary");
    }
    if (vocab.size() > config.vocabSize()) {
      throw new CheckpointException(
          source
              + ": the vocabulary has "
              + vocab.size()
              + " tokens but config vocab_size is "
              + config.vocabSize()
              + " (ids past the embedding table)");
    }
  }

  private static boolean anyPresent(Map<String, int[]> names, Map<String, HostTensor> tensors) {
    return names.keySet().stream().anyMatch(tensors::containsKey);
  }

  private static void checkShapes(
      String source,
      Map<String, int[]> expected,
      Map<String, HostTensor> tensors,
      boolean required) {
    if (!required) {
      return;
    }
    List<String> missing = new ArrayList<>();
    for (Map.Entry<String, int[]> e : expected.entrySet()) {
      HostTensor t = tensors.get(e.getKey());
      if (t == null) {
        missing.add(e.getKey() + " " + Arrays.toString(e.getValue()));
      } else if (!Arrays.equals(t.shape(), e.getValue())) {
        throw new CheckpointException(
            source
                + ": tensor '"
                + e.getKey()
                + "' has shape "
                + Arrays.toString(t.shape())
                + " but config.json implies "
                + Arrays.toString(e.getValue()));
      }
    }
    if (!missing.isEmpty()) {
      // Name the first few: a wrong model type can miss hundreds, and one line must stay readable.
      String shown = String.join(", ", missing.subList(0, Math.min(5, missing.size())));
      throw new CheckpointException(
          source
              + ": missing tensor"
              + (missing.size() > 1 ? "s" : "")
              + " "
              + shown
              + (missing.size() > 5 ? " and " + (missing.size() - 5) + " more" : "")
              + " (expected shape in brackets)");
    }
  }
}
