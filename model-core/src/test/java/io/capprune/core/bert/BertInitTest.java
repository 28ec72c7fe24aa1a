package io.capprune.core.bert;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.testing.TestModels;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BertInitTest {

  @Test
  void initialisesLikeHuggingFace() {
    BertConfig c = TestModels.tiny(2);
    Map<String, HostTensor> p = BertInit.init(c, 42);
    // 5 embedding tensors + 16 per layer + pooler 2 + classifier 2
    assertEquals(5 + 16 * 2 + 4, p.size());
    assertArrayEquals(
        new int[] {64, 32}, p.get("encoder.layer.1.intermediate.dense.weight").shape());
    assertArrayEquals(new int[] {32, 64}, p.get("encoder.layer.1.output.dense.weight").shape());
    assertArrayEquals(new int[] {3, 32}, p.get("classifier.weight").shape());
    for (Map.Entry<String, HostTensor> e : p.entrySet()) {
      float[] d = e.getValue().data();
      String name = e.getKey();
      if (name.endsWith("LayerNorm.weight")) {
        for (float v : d) {
          assertEquals(1f, v, name);
        }
      } else if (name.endsWith("bias")) {
        assertEquals(d.length, e.getValue().countZeros(), name);
      } else {
        double mean = 0;
        double sq = 0;
        for (float v : d) {
          mean += v;
          sq += v * v;
        }
        mean /= d.length;
        double std = Math.sqrt(sq / d.length - mean * mean);
        assertEquals(0.02, std, 0.02 * 5 / Math.sqrt(d.length) + 1e-3, name + " std");
        assertEquals(0, mean, 0.02 * 5 / Math.sqrt(d.length), name + " mean");
      }
    }
  }

  @Test
  void deterministicPerSeedAndPerTensor() {
    BertConfig c = TestModels.tiny(1);
    Map<String, HostTensor> a = BertInit.init(c, 7);
    Map<String, HostTensor> b = BertInit.init(c, 7);
    Map<String, HostTensor> other = BertInit.init(c, 8);
    String q = "encoder.layer.0.attention.self.query.weight";
    assertArrayEquals(a.get(q).data(), b.get(q).data(), 0f);
    assertNotEquals(a.get(q).data()[0], other.get(q).data()[0]);
    // different tensors of the same shape are not copies of each other
    assertNotEquals(
        a.get(q).data()[0], a.get("encoder.layer.0.attention.self.key.weight").data()[0]);
  }

  @Test
  void fillMissingAddsPoolerAndClassifierOnly() {
    BertConfig c = TestModels.tiny(1);
    Map<String, HostTensor> full = BertInit.init(c, 5);
    Map<String, HostTensor> encoderOnly = new java.util.LinkedHashMap<>(full);
    encoderOnly.keySet().removeIf(k -> k.startsWith("pooler.") || k.startsWith("classifier."));
    Map<String, HostTensor> filled = BertInit.fillMissing(c, encoderOnly, 5);
    assertEquals(full.keySet(), filled.keySet());
    assertEquals(full.size() - 4, encoderOnly.size(), "input not modified");
    // same seed, same pooler as a full init: each tensor has its own generator
    assertArrayEquals(
        full.get("pooler.dense.weight").data(), filled.get("pooler.dense.weight").data(), 0f);
    assertSame(
        encoderOnly.get("embeddings.word_embeddings.weight"),
        filled.get("embeddings.word_embeddings.weight"));
    // a present head is kept as it is
    Map<String, HostTensor> again = BertInit.fillMissing(c, full, 99);
    assertSame(full.get("classifier.weight"), again.get("classifier.weight"));
  }

  @Test
  void fillMissingRejectsHalfHeadsAndWrongShapes() {
    BertConfig c = TestModels.tiny(1);
    Map<String, HostTensor> p = BertInit.init(c, 5);
    p.remove("pooler.dense.bias");
    var e = assertThrows(IllegalArgumentException.class, () -> BertInit.fillMissing(c, p, 1));
    assertEquals(
        "parameter 'pooler.dense.bias' is missing but 'pooler.dense.weight' is present",
        e.getMessage());
    Map<String, HostTensor> q = BertInit.init(c, 5);
    q.put("classifier.weight", HostTensor.zeros(2, 32));
    var e2 = assertThrows(IllegalArgumentException.class, () -> BertInit.fillMissing(c, q, 1));
    assertTrue(
        e2.getMessage()
            .startsWith("parameter 'classifier.weight' has shape [2, 32], expected [3, 32]"),
        e2.getMessage());
  }
}
