package io.capprune.core.checkpoint;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * {@code model.safetensors.index.json} of a sharded Hugging Face checkpoint: {@code {"metadata":
 * {"total_size": N}, "weight_map": {tensor: shard file}}}.
 *
 * @param weightMap tensor name to shard file name, in file order
 * @param totalSize the data bytes of all shards as the index states them, or -1 when absent
 */
public record SafetensorsIndex(Map<String, String> weightMap, long totalSize) {

  public static final String FILE_NAME = "model.safetensors.index.json";

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  public SafetensorsIndex {
    weightMap = Collections.unmodifiableMap(new LinkedHashMap<>(weightMap));
  }

  /** The shard files in order of first mention. */
  public List<String> shards() {
    return new ArrayList<>(new LinkedHashSet<>(weightMap.values()));
  }

  /** The tensors the index places in {@code shard}, in index order. */
  public List<String> tensorsIn(String shard) {
    List<String> out = new ArrayList<>();
    weightMap.forEach(
        (tensor, file) -> {
          if (file.equals(shard)) {
            out.add(tensor);
          }
        });
    return out;
  }

  /** The Hugging Face shard name, {@code model-00001-of-00003.safetensors}. */
  public static String shardName(int oneBased, int count) {
    return String.format("model-%05d-of-%05d.safetensors", oneBased, count);
  }

  public static SafetensorsIndex parse(String json, String source) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (IOException e) {
      throw new CheckpointException(source + ": not valid JSON: " + e.getMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new CheckpointException(source + ": expected a JSON object");
    }
    JsonNode map = root.get("weight_map");
    if (map == null || !map.isObject()) {
      throw new CheckpointException(source + ": key 'weight_map' missing or not an object");
    }
    if (map.isEmpty()) {
      throw new CheckpointException(source + ": key 'weight_map' is empty");
    }
    LinkedHashMap<String, String> weightMap = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : map.properties()) {
      if (!e.getValue().isTextual()) {
        throw new CheckpointException(
            source
                + ": weight_map tensor '"
                + e.getKey()
                + "': shard file must be a string, got "
                + e.getValue().getNodeType());
      }
      String file = e.getValue().asText();
      // The index is untrusted: a shard name must not reach outside the checkpoint directory.
      if (file.isEmpty()
          || file.contains("/")
          || file.contains("\\")
          || file.equals(".")
          || file.equals("..")
          || file.indexOf('\0') >= 0) {
        throw new CheckpointException(
            source
                + ": weight_map tensor '"
                + e.getKey()
                + "': shard file '"
                + file
                + "' must be a plain file name in the checkpoint directory");
      }
      weightMap.put(e.getKey(), file);
    }
    long totalSize = -1;
    JsonNode meta = root.get("metadata");
    if (meta != null && meta.isObject() && meta.has("total_size")) {
      JsonNode ts = meta.get("total_size");
      if (!ts.isIntegralNumber() || !ts.canConvertToLong() || ts.longValue() < 0) {
        throw new CheckpointException(
            source + ": key 'metadata.total_size' must be a non-negative integer, got " + ts);
      }
      totalSize = ts.longValue();
    }
    return new SafetensorsIndex(weightMap, totalSize);
  }

  public String toJson() {
    ObjectNode root = JSON.createObjectNode();
    if (totalSize >= 0) {
      root.putObject("metadata").put("total_size", totalSize);
    }
    ObjectNode map = root.putObject("weight_map");
    weightMap.forEach(map::put);
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n";
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
