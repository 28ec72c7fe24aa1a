package io.capprune.core.exchange;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.HostTensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ExchangeCodecTest {

  @Test
  void halfBlocksKeepElevenBitsRelativeToTheBlockMaximumAtAnyScale() {
    SplittableRandom r = new SplittableRandom(1);
    float[] v = new float[3 * HalfBlocks.BLOCK + 17];
    for (int i = 0; i < v.length; i++) {
      // blocks of very different scales: 1e-9 (below binary16's smallest subnormal), 1, 1e6
      double scale = new double[] {1e-9, 1, 1e6, 3e-3}[i / HalfBlocks.BLOCK];
      v[i] = (float) (r.nextGaussian() * scale);
    }
    float[] back = HalfBlocks.decode(HalfBlocks.encode(v));
    for (int b = 0; b * HalfBlocks.BLOCK < v.length; b++) {
      int from = b * HalfBlocks.BLOCK;
      int to = Math.min(v.length, from + HalfBlocks.BLOCK);
      float max = 0;
      for (int i = from; i < to; i++) {
        max = Math.max(max, Math.abs(v[i]));
      }
      for (int i = from; i < to; i++) {
        double err = Math.abs(back[i] - v[i]);
        assertTrue(err <= Math.abs(v[i]) * 0x1p-11 + max * 0x1p-24,
            "value " + i + ": " + v[i] + " came back as " + back[i]);
      }
    }
    assertEquals(2L * v.length + 4, HalfBlocks.bytes(v.length));
  }

  @Test
  void halfBlocksPassZerosAndNonFiniteValuesThrough() {
    float[] v = {0f, -0f, Float.NaN, 1f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
    float[] back = HalfBlocks.decode(HalfBlocks.encode(v));
    assertEquals(0f, back[0]);
    assertTrue(Float.isNaN(back[2]), "a NaN gradient must still reach the driver as NaN");
    assertEquals(1f, back[3]);
    assertEquals(Float.POSITIVE_INFINITY, back[4]);
    assertEquals(Float.NEGATIVE_INFINITY, back[5]);
    float[] zeros = HalfBlocks.decode(HalfBlocks.encode(new float[5]));
    assertArrayEquals(new float[5], zeros);
  }

  private static TrainingState state(double sparsity) {
    LinkedHashMap<String, HostTensor> w = new LinkedHashMap<>();
    SplittableRandom r = new SplittableRandom(2);
    w.put("bert.embeddings.word_embeddings.weight", random(r, 50, 8));
    w.put("bert.encoder.layer.0.attention.self.query.weight", random(r, 8, 8));
    w.put("bert.encoder.layer.0.attention.self.query.bias", random(r, 8));
    w.put("bert.encoder.layer.0.intermediate.dense.weight", random(r, 16, 8));
    w.put("classifier.weight", random(r, 2, 8));
    TrainingState s = TrainingState.fresh(w, true, true);
    for (HostTensor m : s.masks().values()) {
      for (int i = 0; i < m.data().length; i++) {
        m.data()[i] = r.nextDouble() < sparsity ? 0f : 1f;
      }
    }
    return s;
  }

  private static HostTensor random(SplittableRandom r, int... shape) {
    HostTensor t = HostTensor.zeros(shape);
    for (int i = 0; i < t.data().length; i++) {
      t.data()[i] = (float) (r.nextGaussian() * 0.05);
    }
    return t;
  }

  private static List<String> trainable(TrainingState s) {
    List<String> names = new ArrayList<>(s.weights().keySet());
    names.removeAll(s.frozen());
    return names;
  }

  @Test
  void fp32PackingIsExactlyTheEffectiveWeightsAndSendsOnlyKeptEntries() {
    TrainingState s = state(0.7);
    assertEquals(2, s.masks().size(), "two prunable matrices in this state");
    MaskSet masks = MaskSet.of(s.masks());
    PackedWeights p = PackedWeights.pack(s.weights(), s.masks(), trainable(s), masks, WirePrecision.FP32);
    Map<String, HostTensor> expected = s.effectiveWeights(false);
    Map<String, HostTensor> got = p.unpack(masks);
    assertEquals(List.copyOf(expected.keySet()), List.copyOf(got.keySet()));
    long dense = 0;
    for (String name : expected.keySet()) {
      assertArrayEquals(expected.get(name).shape(), got.get(name).shape(), name);
      assertArrayEquals(expected.get(name).data(), got.get(name).data(), 0f, name);
      dense += 4L * expected.get(name).numel();
    }
    assertTrue(p.payloadBytes() < 0.5 * dense, "at 70 % sparsity the payload is "
        + p.payloadBytes() + " bytes of " + dense);
    // the frozen embeddings are not in a step's weights at all
    assertFalse(p.names().contains("bert.embeddings.word_embeddings.weight"));
  }

  @Test
  void fp16PackingIsTheEffectiveWeightsToHalfPrecisionAtHalfTheBytes() {
    TrainingState s = state(0.5);
    MaskSet masks = MaskSet.of(s.masks());
    PackedWeights p32 = PackedWeights.pack(s.weights(), s.masks(), trainable(s), masks, WirePrecision.FP32);
    PackedWeights p16 = PackedWeights.pack(s.weights(), s.masks(), trainable(s), masks, WirePrecision.FP16);
    Map<String, HostTensor> expected = s.effectiveWeights(false);
    Map<String, HostTensor> got = p16.unpack(masks);
    for (String name : expected.keySet()) {
      float[] e = expected.get(name).data();
      float[] g = got.get(name).data();
      for (int i = 0; i < e.length; i++) {
        assertEquals(e[i], g[i], Math.abs(e[i]) * 0x1p-11 + 1e-8, name + "[" + i + "]");
        if (e[i] == 0f) {
          assertEquals(0f, g[i], name + "[" + i + "]: a pruned entry stays exactly zero");
        }
      }
    }
    assertTrue(p16.payloadBytes() < 0.51 * p32.payloadBytes(), p16.payloadBytes() + " vs "
        + p32.payloadBytes());
  }

  @Test
  void weightsUnpackOnlyWithTheMaskSetTheyWerePackedAgainst() {
    TrainingState s = state(0.5);
    MaskSet masks = MaskSet.of(s.masks());
    MaskSet same = MaskSet.of(s.masks());
    assertTrue(masks.sameBits(same), "same masks, same bits");
    PackedWeights p = PackedWeights.pack(s.weights(), s.masks(), trainable(s), masks, WirePrecision.FP32);
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.unpack(same));
    assertTrue(e.getMessage().contains("mask set"), e.getMessage());
    s.masks().values().iterator().next().data()[0] = 1 - s.masks().values().iterator().next().data()[0];
    assertFalse(masks.sameBits(MaskSet.of(s.masks())), "one flipped entry changes the bits");
  }

  @Test
  void precisionKeyNamesTheKeyOnBadInput() {
    assertEquals(WirePrecision.FP16, WirePrecision.parse("k", " FP16"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> WirePrecision.parse("cap.spark.exchange-precision", "bf16"));
    assertTrue(e.getMessage().contains("cap.spark.exchange-precision") && e.getMessage().contains("bf16"));
  }
}
