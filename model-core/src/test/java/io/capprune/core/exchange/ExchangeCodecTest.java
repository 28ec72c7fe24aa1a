package io.capprune.core.exchange;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.FlatParameters;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
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
        assertTrue(
            err <= Math.abs(v[i]) * 0x1p-11 + max * 0x1p-24,
            "value " + i + ": " + v[i] + " came back as " + back[i]);
      }
    }
    assertEquals(2L * v.length + 4, HalfBlocks.bytes(v.length));
  }

  /**
   * The block encoder's branch-free conversion against the reference one, for every exponent and
   * sign and the mantissa patterns where rounding changes (ties, one below, one above) plus random
   * ones, over the whole range it serves (magnitudes below 2^15). Checked exhaustively once, all
   * 2,382,364,672 such floats, when it was written (2026-12-07).
   */
  @Test
  void scaledHalfConversionGivesTheReferenceBitsBelowTwoToTheFifteen() {
    SplittableRandom r = new SplittableRandom(3);
    int[] low = {0, 1, 0xfff, 0x1000, 0x1001, 0x17ff, 0x1800, 0x1801, 0x1fff, 0, 0};
    for (int high = 0; high < (0x47000000 >>> 13); high++) {
      low[low.length - 2] = r.nextInt(0x2000);
      low[low.length - 1] = r.nextInt(0x2000);
      for (int l : low) {
        for (int sign : new int[] {0, 0x80000000}) {
          float f = Float.intBitsToFloat(sign | (high << 13) | l);
          short want = io.capprune.core.tensor.HalfPrecision.floatToF16(f);
          short got = HalfBlocks.scaledToF16(f);
          if (want != got) {
            assertEquals(
                want,
                got,
                "binary16 of "
                    + f
                    + " (bits "
                    + Integer.toHexString(Float.floatToRawIntBits(f))
                    + ")");
          }
        }
      }
    }
  }

  @Test
  void blockEncodingIsTheSameWithZerosPrunedEntriesAndTinyBlocks() {
    // what the fast path must agree with: scaling by the block's power of two, then the reference
    // conversion, value by value
    SplittableRandom r = new SplittableRandom(5);
    float[] v = new float[4 * HalfBlocks.BLOCK + 3];
    for (int i = 0; i < v.length; i++) {
      double scale = new double[] {1e-30, 1, 1e-41, 7e30, 2e-3}[i / HalfBlocks.BLOCK];
      v[i] = r.nextInt(10) < 9 ? 0f : (float) (r.nextGaussian() * scale); // 90 % pruned
    }
    HalfBlocks.Encoded e = HalfBlocks.encode(v);
    for (int i = 0; i < v.length; i++) {
      float scale = Math.scalb(1f, e.exponents()[i / HalfBlocks.BLOCK]);
      assertEquals(
          io.capprune.core.tensor.HalfPrecision.floatToF16(v[i] * scale),
          e.halves()[i],
          "value " + i);
    }
    assertArrayEquals(e.halves(), HalfBlocks.encodeParallel(v).halves());
    // decoding on all cores, and adding from the halves, give what the one-thread decode gives
    float[] once = HalfBlocks.decode(e);
    float[] parallel = new float[v.length];
    HalfBlocks.decodeIntoParallel(e, parallel);
    assertArrayEquals(once, parallel);
    float[] sum = once.clone();
    HalfBlocks.addTo(e, sum);
    float[] twice = new float[v.length];
    for (int i = 0; i < v.length; i++) {
      twice[i] = once[i] + once[i];
    }
    assertArrayEquals(twice, sum);
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

  /** The weights a worker sees: {@code packed} decoded on the device (the CPU here), per tensor. */
  private static Map<String, HostTensor> unpack(
      DeviceWeights device, PackedWeights packed, MaskSet masks, NDManager step) {
    FlatParameters flat = device.unpack(packed, masks, step);
    return toHost(flat, step);
  }

  private static Map<String, HostTensor> toHost(FlatParameters flat, NDManager step) {
    assertEquals(DataType.FLOAT32, flat.values().getDataType());
    Map<String, HostTensor> out = flat.layout().unflatten(flat.values().toFloatArray());
    // the device's views have the shapes the layout gives
    flat.views(step)
        .forEach(
            (name, v) ->
                assertArrayEquals(out.get(name).shape(), NDArrays.toInts(v.getShape()), name));
    return out;
  }

  /** Same bits, except that 0 and −0 count as equal (a pruned entry is +0 on the device). */
  private static void assertSameFloats(float[] expected, float[] got, String name) {
    assertEquals(expected.length, got.length, name);
    for (int i = 0; i < expected.length; i++) {
      if (expected[i] == 0f && got[i] == 0f) {
        continue;
      }
      assertEquals(
          Float.floatToRawIntBits(expected[i]),
          Float.floatToRawIntBits(got[i]),
          name + "[" + i + "]: expected " + expected[i] + ", got " + got[i]);
    }
  }

  private static void assertEffectiveWeights(
      Map<String, HostTensor> expected, Map<String, HostTensor> got) {
    assertEquals(List.copyOf(expected.keySet()), List.copyOf(got.keySet()));
    for (String name : expected.keySet()) {
      assertArrayEquals(expected.get(name).shape(), got.get(name).shape(), name);
      assertSameFloats(expected.get(name).data(), got.get(name).data(), name);
    }
  }

  /**
   * One worker JVM serves stage after stage (and test after test): a model with the same tensor
   * names but other shapes must get a new layout, not the last one's sizes.
   */
  @Test
  void sameNamesWithOtherShapesGetTheirOwnLayout() {
    LinkedHashMap<String, HostTensor> small = new LinkedHashMap<>();
    LinkedHashMap<String, HostTensor> large = new LinkedHashMap<>();
    SplittableRandom r = new SplittableRandom(5);
    small.put("a.weight", random(r, 4, 3));
    small.put("a.bias", random(r, 4));
    large.put("a.weight", random(r, 8, 6));
    large.put("a.bias", random(r, 8));
    MaskSet none = MaskSet.none();
    try (NDManager base = NDManager.newBaseManager();
        DeviceWeights device = DeviceWeights.on(base)) {
      for (Map<String, HostTensor> w : List.of(small, large, small)) {
        try (NDManager step = base.newSubManager()) {
          PackedWeights p =
              PackedWeights.pack(w, Map.of(), List.copyOf(w.keySet()), none, WirePrecision.FP32);
          assertEffectiveWeights(w, unpack(device, p, none, step));
        }
      }
    }
  }

  @Test
  void fp32PackingIsExactlyTheEffectiveWeightsAndSendsOnlyKeptEntries() {
    TrainingState s = state(0.7);
    assertEquals(2, s.masks().size(), "two prunable matrices in this state");
    MaskSet masks = MaskSet.of(s.masks());
    PackedWeights p =
        PackedWeights.pack(s.weights(), s.masks(), trainable(s), masks, WirePrecision.FP32);
    Map<String, HostTensor> expected = s.effectiveWeights(false);
    long dense = 0;
    long kept = 0;
    for (String name : expected.keySet()) {
      dense += expected.get(name).numel();
      kept += masks.masks(name) ? masks.kept(name) : expected.get(name).numel();
    }
    assertEquals(kept, p.streamLength(), "only the kept entries travel");
    try (NDManager manager = NDManager.newBaseManager();
        DeviceWeights device = DeviceWeights.on(manager);
        NDManager step = manager.newSubManager()) {
      assertEffectiveWeights(expected, unpack(device, p, masks, step));
    }
    assertTrue(
        p.payloadBytes() < 0.5 * 4 * dense,
        "at 70 % sparsity the payload is " + p.payloadBytes() + " bytes of " + 4 * dense);
    assertEquals(4L * kept, p.payloadBytes());
    // the frozen embeddings are not in a step's weights at all
    assertFalse(p.names().contains("bert.embeddings.word_embeddings.weight"));
  }

  @Test
  void fp16PackingIsTheEffectiveWeightsToHalfPrecisionAtHalfTheBytes() {
    TrainingState s = state(0.5);
    MaskSet masks = MaskSet.of(s.masks());
    PackedWeights p32 =
        PackedWeights.pack(s.weights(), s.masks(), trainable(s), masks, WirePrecision.FP32);
    PackedWeights p16 =
        PackedWeights.pack(s.weights(), s.masks(), trainable(s), masks, WirePrecision.FP16);
    assertEquals(WirePrecision.FP16, p16.precision());
    Map<String, HostTensor> expected = s.effectiveWeights(false);
    // the host decoder of the same stream, laid out at the kept entries: the device must match it
    float[] stream = HalfBlocks.decode(p16.halfStream());
    Map<String, float[]> hostDecoded = new LinkedHashMap<>();
    int k = 0;
    for (String name : expected.keySet()) {
      float[] w = new float[expected.get(name).numel()];
      float[] m = masks.masks(name) ? s.masks().get(name).data() : null;
      for (int i = 0; i < w.length; i++) {
        if (m == null || m[i] != 0f) {
          w[i] = stream[k++];
        }
      }
      hostDecoded.put(name, w);
    }
    assertEquals(stream.length, k);
    Map<String, HostTensor> got;
    try (NDManager manager = NDManager.newBaseManager();
        DeviceWeights device = DeviceWeights.on(manager);
        NDManager step = manager.newSubManager()) {
      got = unpack(device, p16, masks, step);
    }
    assertEquals(List.copyOf(expected.keySet()), List.copyOf(got.keySet()));
    for (String name : expected.keySet()) {
      assertArrayEquals(expected.get(name).shape(), got.get(name).shape(), name);
      float[] e = expected.get(name).data();
      float[] g = got.get(name).data();
      assertSameFloats(hostDecoded.get(name), g, name + " (device vs host decoder)");
      for (int i = 0; i < e.length; i++) {
        assertEquals(e[i], g[i], Math.abs(e[i]) * 0x1p-11 + 1e-8, name + "[" + i + "]");
        if (e[i] == 0f) {
          assertEquals(0f, g[i], name + "[" + i + "]: a pruned entry stays exactly zero");
        }
      }
    }
    assertTrue(
        p16.payloadBytes() < 0.51 * p32.payloadBytes(),
        p16.payloadBytes() + " vs " + p32.payloadBytes());
  }

  /**
   * One DeviceWeights over several steps, as a worker keeps it: the keep pattern follows the mask
   * set, the wire precision may change, and a step's weights stay intact when a later step reuses
   * the upload buffer.
   */
  @Test
  void deviceWeightsFollowMaskChangesAcrossSteps() {
    TrainingState s = state(0.6);
    List<String> names = trainable(s);
    try (NDManager manager = NDManager.newBaseManager();
        DeviceWeights device = DeviceWeights.on(manager);
        NDManager steps = manager.newSubManager()) {
      MaskSet first = MaskSet.of(s.masks());
      Map<String, HostTensor> expectedFirst = s.effectiveWeights(false);
      Map<String, HostTensor> gotFirst =
          unpack(
              device,
              PackedWeights.pack(s.weights(), s.masks(), names, first, WirePrecision.FP32),
              first,
              steps);
      FlatParameters firstFlat =
          device.unpack(
              PackedWeights.pack(s.weights(), s.masks(), names, first, WirePrecision.FP32),
              first,
              steps);
      assertEffectiveWeights(expectedFirst, gotFirst);

      // new weights and new masks (another mask set): the keep pattern must be rebuilt
      SplittableRandom r = new SplittableRandom(5);
      for (HostTensor w : s.weights().values()) {
        for (int i = 0; i < w.data().length; i++) {
          w.data()[i] += (float) (r.nextGaussian() * 0.01);
        }
      }
      for (HostTensor m : s.masks().values()) {
        for (int i = 0; i < m.data().length; i++) {
          m.data()[i] = r.nextDouble() < 0.3 ? 0f : 1f;
        }
      }
      MaskSet second = MaskSet.of(s.masks());
      assertFalse(first.sameBits(second));
      assertEffectiveWeights(
          s.effectiveWeights(false),
          unpack(
              device,
              PackedWeights.pack(s.weights(), s.masks(), names, second, WirePrecision.FP32),
              second,
              steps));
      // the earlier step's vector was not overwritten by the later upload
      assertEffectiveWeights(expectedFirst, toHost(firstFlat, steps));

      // the same masks in fp16, then every mask dropped (nothing masked: the stream is the vector)
      Map<String, HostTensor> fp16 =
          unpack(
              device,
              PackedWeights.pack(s.weights(), s.masks(), names, second, WirePrecision.FP16),
              second,
              steps);
      Map<String, HostTensor> expected = s.effectiveWeights(false);
      for (String name : names) {
        float[] e = expected.get(name).data();
        float[] g = fp16.get(name).data();
        for (int i = 0; i < e.length; i++) {
          assertEquals(e[i], g[i], Math.abs(e[i]) * 0x1p-11 + 1e-8, name + "[" + i + "]");
        }
      }
      MaskSet none = MaskSet.none();
      PackedWeights dense =
          PackedWeights.pack(s.weights(), s.masks(), names, none, WirePrecision.FP32);
      assertEquals(
          dense.streamLength(), names.stream().mapToInt(n -> s.weights().get(n).numel()).sum());
      Map<String, HostTensor> denseGot = unpack(device, dense, none, steps);
      for (String name : names) {
        assertSameFloats(s.weights().get(name).data(), denseGot.get(name).data(), name);
      }
    }
  }

  /** What a step unpacks dies with the step's manager; only the keep pattern stays resident. */
  @Test
  void residentDeviceWeightsKeepNothingOfAStep() {
    TrainingState s = state(0.5);
    List<String> names = trainable(s);
    MaskSet masks = MaskSet.of(s.masks());
    try (NDManager base = NDManager.newBaseManager();
        DeviceWeights device = DeviceWeights.on(base)) {
      try (NDManager step = base.newSubManager()) {
        device.unpack(
            PackedWeights.pack(s.weights(), s.masks(), names, masks, WirePrecision.FP32),
            masks,
            step);
      }
      int resident = base.getManagedArrays().size();
      for (int t = 0; t < 4; t++) {
        WirePrecision precision = t % 2 == 0 ? WirePrecision.FP16 : WirePrecision.FP32;
        if (t == 2) {
          s.masks().values().iterator().next().data()[3] =
              1 - s.masks().values().iterator().next().data()[3];
          masks = MaskSet.of(s.masks()); // a new keep pattern replaces the old one
        }
        try (NDManager step = base.newSubManager()) {
          FlatParameters flat =
              device.unpack(
                  PackedWeights.pack(s.weights(), s.masks(), names, masks, precision), masks, step);
          flat.views(step);
          flat.values().toFloatArray();
        }
        assertEquals(resident, base.getManagedArrays().size(), "arrays left after step " + t);
      }
    }
  }

  @Test
  void weightsUnpackOnlyWithTheMaskSetTheyWerePackedAgainst() {
    TrainingState s = state(0.5);
    MaskSet masks = MaskSet.of(s.masks());
    MaskSet same = MaskSet.of(s.masks());
    assertTrue(masks.sameBits(same), "same masks, same bits");
    PackedWeights p =
        PackedWeights.pack(s.weights(), s.masks(), trainable(s), masks, WirePrecision.FP32);
    try (NDManager manager = NDManager.newBaseManager();
        DeviceWeights device = DeviceWeights.on(manager);
        NDManager step = manager.newSubManager()) {
      IllegalStateException e =
          assertThrows(IllegalStateException.class, () -> device.unpack(p, same, step));
      assertTrue(e.getMessage().contains("mask set"), e.getMessage());
      assertThrows(IllegalStateException.class, () -> device.unpack(p, null, step));
      // the refusal left nothing behind: the right mask set still unpacks
      assertEffectiveWeights(s.effectiveWeights(false), unpack(device, p, masks, step));
    }
    s.masks().values().iterator().next().data()[0] =
        1 - s.masks().values().iterator().next().data()[0];
    assertFalse(masks.sameBits(MaskSet.of(s.masks())), "one flipped entry changes the bits");
  }

  /** Exactly the host encoder's bits, halves and block exponents, whatever the data. */
  @Test
  void deviceEncoderGivesTheHostEncodersBits() {
    int block = HalfBlocks.BLOCK;
    List<float[]> blocks = new ArrayList<>();
    SplittableRandom r = new SplittableRandom(11);
    blocks.add(gaussian(r, block, 1e-9)); // below binary16's smallest subnormal unscaled
    blocks.add(gaussian(r, block, 1e6)); // above its largest finite value unscaled
    float[] mixed = new float[block];
    for (int i = 0; i < block; i++) {
      // magnitudes from 1e-30 to 1e4 in one block: the small ones flush to zero or subnormals
      mixed[i] = (float) ((r.nextBoolean() ? 1 : -1) * Math.pow(10, r.nextDouble(-30, 4)));
    }
    blocks.add(mixed);
    float[] zeros = new float[block];
    zeros[3] = -0f;
    blocks.add(zeros);
    float[] subnormal = new float[block];
    for (int i = 0; i < block; i++) {
      // float32 subnormals only: the scale is capped at 2^126
      subnormal[i] = Float.intBitsToFloat(r.nextInt(1, 0x800000)) * (r.nextBoolean() ? 1 : -1);
    }
    blocks.add(subnormal);
    for (int p : new int[] {-100, -24, -1, 0, 10, 14, 15, 16, 100}) {
      // the block maximum just below a power of two, and exactly one
      for (boolean exact : new boolean[] {false, true}) {
        float[] v = gaussian(r, block, Math.scalb(1f, p - 3));
        float top = Math.scalb(1f, p);
        v[r.nextInt(block)] = exact ? top : Math.nextDown(top);
        for (int i = 0; i < block; i++) {
          if (Math.abs(v[i]) > Math.nextDown(top)) {
            v[i] = Math.copySign(Math.nextDown(top) / 2, v[i]);
          }
        }
        blocks.add(v);
      }
    }
    // scale 1 (maximum 2^14): round-to-nearest-even ties, normal and subnormal
    float[] ties = new float[block];
    float[] tieValues = {
      0x1p14f,
      1f + 0x1p-11f,
      1f + 0x3p-11f,
      -(1f + 0x1p-11f),
      0x1p-25f,
      0x3p-25f,
      -0x1p-25f,
      2049f,
      2051f,
      0x1p-15f + 0x1p-25f,
      1e-10f,
      0x1.ffep13f,
      0x1.fffp13f
    };
    System.arraycopy(tieValues, 0, ties, 0, tieValues.length);
    blocks.add(ties);
    float[] largest = gaussian(r, block, 1e30);
    largest[5] = Float.MAX_VALUE;
    largest[6] = -Float.MAX_VALUE;
    largest[7] = Float.MIN_NORMAL;
    blocks.add(largest);
    float[] withNaN = gaussian(r, block, 1);
    withNaN[10] = Float.NaN;
    withNaN[11] = 1e6f; // unscaled in a non-finite block: overflows to infinity like the host
    withNaN[12] = 1e-9f;
    int nanAt = blocks.size() * block + 10;
    blocks.add(withNaN);
    float[] withInf = gaussian(r, block, 100);
    withInf[0] = Float.POSITIVE_INFINITY;
    withInf[1] = Float.NEGATIVE_INFINITY;
    withInf[2] = 70000f;
    blocks.add(withInf);
    float[] allNaN = new float[block];
    java.util.Arrays.fill(allNaN, Float.NaN);
    blocks.add(allNaN);
    blocks.add(gaussian(r, 17, 3e-3)); // a partial last block
    int length = blocks.stream().mapToInt(b -> b.length).sum();
    float[] values = new float[length];
    int o = 0;
    for (float[] b : blocks) {
      System.arraycopy(b, 0, values, o, b.length);
      o += b.length;
    }
    HalfBlocks.Encoded host = HalfBlocks.encode(values);
    HalfBlocks.Encoded device;
    try (NDManager manager = NDManager.newBaseManager()) {
      device = HalfBlocks.encode(manager.create(values));
      assertEquals(0, HalfBlocks.encode(manager.create(new float[0])).halves().length);
    }
    assertEquals(host.exponents().length, device.exponents().length);
    assertEquals((length + block - 1) / block, device.exponents().length);
    for (int b = 0; b < host.exponents().length; b++) {
      assertEquals(host.exponents()[b], device.exponents()[b], "exponent of block " + b);
    }
    assertEquals(host.halves().length, device.halves().length);
    for (int i = 0; i < length; i++) {
      assertEquals(
          Integer.toHexString(host.halves()[i] & 0xffff),
          Integer.toHexString(device.halves()[i] & 0xffff),
          "value " + i + " (block " + i / block + "): " + values[i]);
    }
    // the data really were tricky: subnormal and non-finite halves, scaled and unscaled blocks
    float[] back = HalfBlocks.decode(device);
    assertTrue(Float.isNaN(back[nanAt]), "NaN survives");
    assertEquals(Float.POSITIVE_INFINITY, back[nanAt + 1], "unscaled 1e6 overflows the half");
    assertEquals(126, device.exponents()[4], "a subnormal-only block takes the largest scale");
    assertEquals(0, device.exponents()[3], "an all-zero block is unscaled");
  }

  private static float[] gaussian(SplittableRandom r, int n, double scale) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (r.nextGaussian() * scale);
    }
    return v;
  }

  @Test
  void precisionKeyNamesTheKeyOnBadInput() {
    assertEquals(WirePrecision.FP16, WirePrecision.parse("k", " FP16"));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> WirePrecision.parse("cap.spark.exchange-precision", "bf16"));
    assertTrue(
        e.getMessage().contains("cap.spark.exchange-precision") && e.getMessage().contains("bf16"));
  }
}
