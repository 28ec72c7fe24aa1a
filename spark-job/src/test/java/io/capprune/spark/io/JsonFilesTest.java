package io.capprune.spark.io;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** Issue 20 item 6: the job's JSON has a fixed key order whatever kind of map built it. */
class JsonFilesTest {

  /** A map that iterates in reverse key order, as an unordered map may in some JVM. */
  static final class Reversed extends AbstractMap<String, Object> {
    private final TreeMap<String, Object> m = new TreeMap<>(java.util.Comparator.reverseOrder());

    Reversed put2(String k, Object v) {
      m.put(k, v);
      return this;
    }

    @Override
    public Set<Entry<String, Object>> entrySet() {
      return m.entrySet();
    }
  }

  @Test
  void unorderedMapsAreWrittenWithSortedKeysAndOrderedOnesKeepTheirOrder() {
    Map<String, Object> ordered = new LinkedHashMap<>();
    ordered.put("task", "sst2");
    ordered.put("b", new Reversed().put2("a", 1).put2("c", 3).put2("b", 2));
    ordered.put("a", List.of(new Reversed().put2("y", 1).put2("z", 2).put2("x", 0)));
    String json = JsonFiles.pretty(ordered).replaceAll("\\s+", "");
    assertEquals(
        "{\"task\":\"sst2\",\"b\":{\"a\":1,\"b\":2,\"c\":3},\"a\":[{\"x\":0,\"y\":1,\"z\":2}]}",
        json);
  }

  @Test
  void mapOfAndSetOfAreWrittenInOneOrderInEveryJvm() {
    // Map.of / Set.of iterate in an order salted per JVM; the writer sorts them.
    Map<String, Object> m =
        Map.of(
            "epoch",
            1,
            "sparsity",
            0.5,
            "dev",
            Map.of("acc", 0.9, "f1", 0.8),
            "name",
            "x",
            "kept",
            3,
            "numel",
            9);
    assertEquals(
        "{\"dev\":{\"acc\":0.9,\"f1\":0.8},\"epoch\":1,\"kept\":3,\"name\":\"x\",\"numel\":9,"
            + "\"sparsity\":0.5}",
        JsonFiles.pretty(m).replaceAll("\\s+", ""));
    assertEquals(
        "[\"a\",\"b\",\"c\",\"d\"]",
        JsonFiles.pretty(Set.of("d", "b", "a", "c")).replaceAll("\\s+", ""));
    List<String> insertion = new ArrayList<>(List.of("d", "b", "a"));
    assertEquals("[\"d\",\"b\",\"a\"]", JsonFiles.pretty(insertion).replaceAll("\\s+", ""));
  }

  @Test
  void integerKeysOfASortedMapKeepNumericOrder() {
    TreeMap<Integer, List<Integer>> pruned = new TreeMap<>();
    pruned.put(10, List.of(1));
    pruned.put(2, List.of(0, 3));
    assertEquals("{\"2\":[0,3],\"10\":[1]}", JsonFiles.pretty(pruned).replaceAll("\\s+", ""));
  }
}
