package io.capprune.spark.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * The one way the job writes its JSON files (metrics.json, sparsity.json, structured.json,
 * run.json, state.json, the snapshot markers), so that equal content gives equal bytes from run to
 * run: an insertion-ordered map (LinkedHashMap) or a sorted map keeps its order; any other map
 * ({@code Map.of}, HashMap, an unmodifiable view) is written with its keys sorted, because its
 * iteration order may change from one JVM to the next ({@code Map.of} salts it per JVM).
 */
public final class JsonFiles {
  private static final ObjectMapper JSON = new ObjectMapper();

  private JsonFiles() {}

  /** Pretty-printed JSON with a fixed key order, ending in a newline. */
  public static String pretty(Object value) {
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(canonical(value)) + "\n";
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write JSON: " + e.getMessage(), e);
    }
  }

  public static byte[] prettyBytes(Object value) {
    return pretty(value).getBytes(StandardCharsets.UTF_8);
  }

  /** The value with every map replaced by one whose iteration order is fixed. */
  static Object canonical(Object v) {
    if (v instanceof Map<?, ?> m) {
      Map<String, Object> out =
          m instanceof LinkedHashMap<?, ?> || m instanceof SortedMap<?, ?>
              ? new LinkedHashMap<>()
              : new TreeMap<>();
      m.forEach((k, x) -> out.put(String.valueOf(k), canonical(x)));
      return out;
    }
    if (v instanceof Collection<?> c) {
      List<Object> out = new ArrayList<>(c.size());
      for (Object x : c) {
        out.add(canonical(x));
      }
      if (c instanceof java.util.Set<?>
          && !(c instanceof java.util.LinkedHashSet<?>)
          && !(c instanceof java.util.SortedSet<?>)) {
        out.sort(java.util.Comparator.comparing(String::valueOf));
      }
      return out;
    }
    return v;
  }
}
