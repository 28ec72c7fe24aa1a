package io.capprune.core.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import io.capprune.core.bert.BertInit;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.exchange.HalfBlocks;
import io.capprune.core.exchange.MaskSet;
import io.capprune.core.exchange.PackedWeights;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.optim.LinearWarmupDecay;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.tensor.FlatParameters;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.testing.TestModels;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The device update (run here on the CPU through DJL) against {@link DriverUpdate}, the host
 * implementation: same masks, and weights, scores and moments bit for bit (soft movement: within
 * float32 rounding of its sigmoid), step after step with clipping and decay active; and the
 * broadcast it builds against {@link MaskSet#of} and {@link PackedWeights#pack}.
 */
class DeviceDriverUpdateTest {

  /**
   * Where the device update runs: the CPU, or {@code -Dcapprune.test.device=gpu} to run these
   * comparisons on the GPU (the same tolerances: CUDA's float sqrt and division are IEEE-rounded).
   */
  private static final Device DEVICE =
      "gpu".equals(System.getProperty("capprune.test.device")) ? Device.gpu() : Device.cpu();

  private static final Map<String, int[]> SHAPES = BertInit.shapes(TestModels.driverUpdateShape());
  private static final String Q = "encoder.layer.0.attention.self.query.weight";
  private static final String CLS = "classifier.weight";

  private static OptimizerConfig optimizer(double weightDecay, double maxGradNorm) {
    return new OptimizerConfig(
        0.01, 0.1, weightDecay, 0.9, 0.999, 1e-8, maxGradNorm, new LinearWarmupDecay(0, 10));
  }

  private static PruningConfig pruning(PruningCriterion c, boolean global) {
    SparsitySchedule s =
        c == PruningCriterion.SOFT_MOVEMENT
            ? new SparsitySchedule(1, 0, 0, 10, 0.0, 0.6)
            : new SparsitySchedule(1, 0, 0, 10, 1.0, 0.2);
    return new PruningConfig(c, s, global, c == PruningCriterion.SOFT_MOVEMENT ? 30 : 0, true, 0);
  }

  private static LinkedHashMap<String, HostTensor> copy(Map<String, HostTensor> m) {
    LinkedHashMap<String, HostTensor> c = new LinkedHashMap<>();
    m.forEach((k, v) -> c.put(k, v.copy()));
    return c;
  }

  private static void assertClose(
      Map<String, HostTensor> expected,
      Map<String, HostTensor> actual,
      float relative,
      String what) {
    assertEquals(expected.keySet(), actual.keySet(), what);
    expected.forEach(
        (k, e) -> {
          float[] a = actual.get(k).data();
          float[] x = e.data();
          for (int i = 0; i < x.length; i++) {
            float tol = relative * Math.max(1e-3f, Math.abs(x[i]));
            if (relative == 0f) {
              assertEquals(
                  Float.floatToIntBits(x[i] + 0f),
                  Float.floatToIntBits(a[i] + 0f),
                  what + " " + k + "[" + i + "] " + x[i] + " vs " + a[i]);
            } else {
              assertEquals(x[i], a[i], tol, what + " " + k + "[" + i + "]");
            }
          }
        });
  }

  /** The FIXED criterion needs masks from outside: half of every matrix, by a pattern. */
  private static void fixMasks(TrainingState state) {
    for (HostTensor m : state.masks().values()) {
      for (int i = 0; i < m.numel(); i++) {
        m.data()[i] = (i * 7) % 3 == 0 ? 0f : 1f;
      }
    }
  }

  private static void compareSteps(PruningConfig p, OptimizerConfig o, int steps, float relative) {
    DriverUpdate host = new DriverUpdate(p, o);
    TrainingState expected = host.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    try (DeviceDriverUpdate device = new DeviceDriverUpdate(p, o, DEVICE)) {
      TrainingState actual = device.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
      if (p.criterion() == PruningCriterion.FIXED) {
        fixMasks(expected);
        actual.releaseDevice();
        fixMasks(actual);
      }
      assertTrue(p.criterion() == PruningCriterion.FIXED || actual.onDevice());
      assertClose(expected.masks(), actual.masks(), 0f, "initial masks");
      for (long t = 0; t < steps; t++) {
        LinkedHashMap<String, HostTensor> grads = TestModels.randomWeights(SHAPES, 0.3, 100 + t);
        UpdateSummary se = host.apply(expected, copy(grads));
        UpdateSummary sa = device.apply(actual, grads);
        assertTrue(actual.onDevice());
        String when = p.criterion() + " step " + t;
        assertEquals(se.gradNorm(), sa.gradNorm(), 1e-5 * se.gradNorm(), when);
        assertEquals(se.clipCoefficient(), sa.clipCoefficient(), 1e-5, when);
        assertTrue(se.clipCoefficient() < 1, "clipping active");
        assertEquals(se.regularizer(), sa.regularizer(), 1e-6, when);
        assertEquals(se.sparsity(), sa.sparsity(), when);
        assertEquals(t + 1, actual.step());
        // reading the state copies it back from the device
        assertClose(expected.masks(), actual.masks(), 0f, "masks " + when);
        assertClose(expected.weights(), actual.weights(), relative, "weights " + when);
        assertClose(expected.scores(), actual.scores(), relative, "scores " + when);
        assertClose(expected.expAvg(), actual.expAvg(), relative, "exp_avg " + when);
        assertClose(expected.expAvgSq(), actual.expAvgSq(), relative, "exp_avg_sq " + when);
        assertEquals(expected.sparsity(), actual.sparsity(), when);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(PruningCriterion.class)
  void stepsEqualTheHostUpdate(PruningCriterion criterion) {
    // clip at 0.05 so clipping is active, weight decay on, masks change every step
    compareSteps(
        pruning(criterion, false),
        optimizer(0.01, 0.05),
        4,
        criterion == PruningCriterion.SOFT_MOVEMENT ? 1e-4f : 0f);
  }

  @ParameterizedTest
  @EnumSource(
      value = PruningCriterion.class,
      names = {"MOVEMENT", "MAGNITUDE"})
  void bothWaysOfApplyingPerTensorPartsGiveTheHostUpdate(PruningCriterion criterion) {
    // the other strategy than this device's default (flag vectors on the CPU, runs on a GPU)
    PruningConfig p = pruning(criterion, false);
    OptimizerConfig o = optimizer(0.01, 0.05);
    DriverUpdate host = new DriverUpdate(p, o);
    TrainingState expected = host.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    try (DeviceDriverUpdate device = new DeviceDriverUpdate(p, o, DEVICE, !DEVICE.isGpu())) {
      TrainingState actual = device.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
      for (long t = 0; t < 3; t++) {
        LinkedHashMap<String, HostTensor> grads = TestModels.randomWeights(SHAPES, 0.3, 100 + t);
        host.apply(expected, copy(grads));
        device.apply(actual, grads);
      }
      assertClose(expected.masks(), actual.masks(), 0f, "masks");
      assertClose(expected.weights(), actual.weights(), 0f, "weights");
      assertClose(expected.scores(), actual.scores(), 0f, "scores");
      assertClose(expected.expAvg(), actual.expAvg(), 0f, "exp_avg");
    }
  }

  @Test
  void globalTopKEqualsTheHostUpdate() {
    compareSteps(pruning(PruningCriterion.MAGNITUDE, true), optimizer(0.01, 0.05), 3, 0f);
    compareSteps(pruning(PruningCriterion.MOVEMENT, true), optimizer(0, 0.05), 3, 0f);
  }

  @Test
  void tiesGoToTheLowestIndexAsOnTheHost() {
    // scores start at 0 and the schedule keeps half from step 0: every score ties
    PruningConfig p =
        new PruningConfig(
            PruningCriterion.MOVEMENT, SparsitySchedule.constant(0.5, 10), false, 0, true, 0);
    try (DeviceDriverUpdate device = new DeviceDriverUpdate(p, optimizer(0, 1e9), DEVICE)) {
      TrainingState state = device.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
      float[] mask = state.masks().get(Q).data();
      for (int i = 0; i < mask.length; i++) {
        assertEquals(i < 32 ? 1f : 0f, mask[i], "index " + i);
      }
      // a zero gradient keeps the scores tied: the same half again after a step
      LinkedHashMap<String, HostTensor> zero = new LinkedHashMap<>();
      SHAPES.forEach((k, s) -> zero.put(k, HostTensor.zeros(s)));
      device.apply(state, zero);
      mask = state.masks().get(Q).data();
      for (int i = 0; i < mask.length; i++) {
        assertEquals(i < 32 ? 1f : 0f, mask[i], "after a step, index " + i);
      }
    }
  }

  @Test
  void tiesInSomeRowsOfAGroupGoToTheLowestIndexAsOnTheHost() {
    // magnitude, 30 % kept: Q's |W| takes 8 values, each on an eighth of its entries, so its
    // boundary falls inside a run of equal values, while the other matrices of its size (its
    // group of the stacked top-k) have random weights and no tie at theirs
    PruningConfig p =
        new PruningConfig(
            PruningCriterion.MAGNITUDE, SparsitySchedule.constant(0.3, 10), false, 0, true, 0);
    LinkedHashMap<String, HostTensor> w = TestModels.randomWeights(SHAPES, 0.5, 1);
    float[] q = w.get(Q).data();
    for (int i = 0; i < q.length; i++) {
      q[i] = ((i * 5) % 8 + 1) * 0.01f * (i % 3 == 0 ? -1 : 1);
    }
    DriverUpdate hostUpdate = new DriverUpdate(p, optimizer(0, 1e9));
    TrainingState expected = hostUpdate.initialState(copy(w));
    try (DeviceDriverUpdate device = new DeviceDriverUpdate(p, optimizer(0, 1e9), DEVICE)) {
      TrainingState actual = device.initialState(copy(w));
      assertClose(expected.masks(), actual.masks(), 0f, "masks with ties in one row");
      float[] mask = actual.masks().get(Q).data();
      int kept = 0;
      for (float m : mask) {
        kept += (int) m;
      }
      assertEquals(MaskComputer.keepCount(0.3, q.length), kept, "kept in Q");
      // a zero gradient keeps the ties: the same masks after a step
      LinkedHashMap<String, HostTensor> zero = new LinkedHashMap<>();
      SHAPES.forEach((k, s) -> zero.put(k, HostTensor.zeros(s)));
      hostUpdate.apply(expected, copy(zero));
      device.apply(actual, zero);
      assertClose(expected.masks(), actual.masks(), 0f, "masks with ties after a step");
    }
  }

  @Test
  void magnitudeScoreInitGivesTheHostMasks() {
    PruningConfig p =
        new PruningConfig(
            PruningCriterion.MOVEMENT, SparsitySchedule.constant(0.25, 10), false, 0, true, 0, 2.0);
    TrainingState host =
        new DriverUpdate(p, optimizer(0, 1e9))
            .initialState(TestModels.randomWeights(SHAPES, 0.5, 3));
    try (DeviceDriverUpdate device = new DeviceDriverUpdate(p, optimizer(0, 1e9), DEVICE)) {
      TrainingState state = device.initialState(TestModels.randomWeights(SHAPES, 0.5, 3));
      assertClose(host.masks(), state.masks(), 0f, "masks");
      assertClose(host.scores(), state.scores(), 0f, "scores");
    }
  }

  @ParameterizedTest
  @EnumSource(WirePrecision.class)
  void broadcastEqualsTheHostPacking(WirePrecision precision) {
    PruningConfig p = pruning(PruningCriterion.MOVEMENT, false);
    try (DeviceDriverUpdate device = new DeviceDriverUpdate(p, optimizer(0.01, 1), DEVICE)) {
      TrainingState state = device.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
      for (long t = 0; t < 3; t++) {
        device.apply(state, TestModels.randomWeights(SHAPES, 0.3, 7 + t));
        List<String> names = device.trainableNames(state);
        MaskSet bits = device.maskSet(state);
        // host packing reads the state through its accessors, i.e. after the copy back
        MaskSet expectedBits = MaskSet.of(state.masks());
        assertTrue(expectedBits.sameBits(bits), "mask bits step " + t);
        for (String n : expectedBits.names()) {
          assertEquals(expectedBits.kept(n), bits.kept(n), n);
        }
        assertTrue(bits.kept(Q) < 64, "the masks prune something");
        PackedWeights got = device.pack(state, names, bits, precision);
        PackedWeights want =
            PackedWeights.pack(state.weights(), state.masks(), names, bits, precision);
        assertEquals(want.maskSetId(), got.maskSetId());
        assertEquals(want.names(), got.names());
        assertEquals(want.packedCounts(), got.packedCounts());
        for (int i = 0; i < names.size(); i++) {
          assertArrayEquals(want.shape(i), got.shape(i));
        }
        if (precision == WirePrecision.FP32) {
          assertArrayEquals(want.fp32Stream(), got.fp32Stream(), 0f);
        } else {
          assertArrayEquals(want.halfStream().halves(), got.halfStream().halves());
          assertArrayEquals(want.halfStream().exponents(), got.halfStream().exponents());
        }
        // a set that masks nothing: every tensor whole, as the host packs it
        PackedWeights dense = device.pack(state, names, MaskSet.none(), WirePrecision.FP32);
        PackedWeights denseHost =
            PackedWeights.pack(
                state.weights(), state.masks(), names, MaskSet.none(), WirePrecision.FP32);
        assertArrayEquals(denseHost.fp32Stream(), dense.fp32Stream(), 0f);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = PruningCriterion.class,
      names = {"MOVEMENT", "MAGNITUDE", "SOFT_MOVEMENT"})
  void stepsAndPackingLeaveNoArraysBehindOnTheDevice(PruningCriterion criterion) {
    try (DeviceDriverUpdate device =
        new DeviceDriverUpdate(pruning(criterion, false), optimizer(0.01, 0.05), DEVICE)) {
      TrainingState state = device.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
      int held = -1;
      for (long t = 0; t < 4; t++) {
        device.apply(state, TestModels.randomWeights(SHAPES, 0.3, 100 + t));
        List<String> names = device.trainableNames(state);
        MaskSet bits = device.maskSet(state);
        device.pack(state, names, bits, WirePrecision.FP16);
        device.pack(state, names, MaskSet.none(), WirePrecision.FP32);
        state.weights();
        if (held < 0) {
          held = device.residentArrays();
          assertTrue(held > 0);
        }
        assertEquals(held, device.residentArrays(), "arrays on the device after step " + t);
      }
    }
  }

  /** The gradients of {@code names}, concatenated in that order. */
  private static float[] flatten(List<String> names, Map<String, HostTensor> grads) {
    float[] flat = new float[names.stream().mapToInt(x -> grads.get(x).numel()).sum()];
    int o = 0;
    for (String name : names) {
      float[] g = grads.get(name).data();
      System.arraycopy(g, 0, flat, o, g.length);
      o += g.length;
    }
    return flat;
  }

  @Test
  void flatGradientInTheTrainableOrder() {
    PruningConfig p = pruning(PruningCriterion.MOVEMENT, false);
    try (DeviceDriverUpdate a = new DeviceDriverUpdate(p, optimizer(0.01, 1), DEVICE);
        DeviceDriverUpdate b = new DeviceDriverUpdate(p, optimizer(0.01, 1), DEVICE)) {
      TrainingState sa = a.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
      TrainingState sb = b.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
      LinkedHashMap<String, HostTensor> grads = TestModels.randomWeights(SHAPES, 0.3, 5);
      List<String> names = a.trainableNames(sa);
      assertFalse(names.contains("embeddings.word_embeddings.weight"));
      float[] flat = flatten(names, grads);
      int n = flat.length;
      a.apply(sa, grads);
      b.applyFlat(sb, flat);
      assertClose(sa.weights(), sb.weights(), 0f, "weights");
      assertClose(sa.masks(), sb.masks(), 0f, "masks");
      assertThrows(IllegalArgumentException.class, () -> b.applyFlat(sb, new float[n - 1]));
    }
  }

  @Test
  void anEncodedGradientGivesTheUpdateOfItsHostDecoding() {
    PruningConfig p = pruning(PruningCriterion.MOVEMENT, false);
    try (DeviceDriverUpdate a = new DeviceDriverUpdate(p, optimizer(0.01, 1), DEVICE);
        DeviceDriverUpdate b = new DeviceDriverUpdate(p, optimizer(0.01, 1), DEVICE)) {
      TrainingState sa = a.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
      TrainingState sb = b.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
      List<String> names = a.trainableNames(sa);
      for (long t = 0; t < 3; t++) {
        LinkedHashMap<String, HostTensor> grads = TestModels.randomWeights(SHAPES, 0.3, 50 + t);
        // blocks far below binary16's range: the block scaling must survive the device path
        grads.forEach(
            (name, g) -> {
              if (name.contains("attention")) {
                float[] d = g.data();
                for (int i = 0; i < d.length; i++) {
                  d[i] *= 1e-9f;
                }
              }
            });
        float[] flat = flatten(names, grads);
        HalfBlocks.Encoded e = HalfBlocks.encode(flat);
        a.applyFlat(sa, HalfBlocks.decode(e));
        b.applyEncoded(sb, e);
        assertClose(sa.weights(), sb.weights(), 0f, "weights after step " + t);
        assertClose(sa.masks(), sb.masks(), 0f, "masks after step " + t);
      }
      assertThrows(
          IllegalArgumentException.class,
          () -> b.applyEncoded(sb, HalfBlocks.encode(new float[5])));
    }
  }

  @Test
  void effectiveWeightsAreTheStatesWeightsTimesItsMasksOnTheDevice() {
    PruningConfig p = pruning(PruningCriterion.MOVEMENT, false);
    try (DeviceDriverUpdate update = new DeviceDriverUpdate(p, optimizer(0.01, 1), DEVICE);
        NDManager m = NDManager.newBaseManager(DEVICE)) {
      TrainingState state = update.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
      update.apply(state, TestModels.randomWeights(SHAPES, 0.3, 7));
      FlatParameters w = update.effectiveWeights(state, m);
      assertEquals(update.trainableNames(state), w.names());
      Map<String, HostTensor> got = w.layout().unflatten(w.values().toFloatArray());
      int masked = 0;
      for (String name : w.names()) {
        float[] want = state.weights().get(name).data().clone();
        HostTensor mask = state.masks().get(name);
        if (mask != null) {
          masked++;
          for (int i = 0; i < want.length; i++) {
            want[i] *= mask.data()[i];
          }
        }
        assertArrayEquals(want, got.get(name).data(), name);
      }
      assertTrue(masked > 0, "the shape has masked matrices");
    }
  }

  @Test
  void badGradientsAreRejectedAndLeaveTheStateUnchanged() {
    PruningConfig p = pruning(PruningCriterion.MOVEMENT, false);
    try (DeviceDriverUpdate update = new DeviceDriverUpdate(p, optimizer(0, 1), DEVICE)) {
      TrainingState state = update.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
      LinkedHashMap<String, HostTensor> w = copy(state.weights());
      LinkedHashMap<String, HostTensor> g = TestModels.randomWeights(SHAPES, 0.3, 5);
      g.put("encoder.layer.9.output.dense.weight", HostTensor.zeros(2));
      assertEquals(
          "gradient for unknown tensor 'encoder.layer.9.output.dense.weight'",
          assertThrows(IllegalArgumentException.class, () -> update.apply(state, g)).getMessage());
      LinkedHashMap<String, HostTensor> g2 = TestModels.randomWeights(SHAPES, 0.3, 5);
      g2.remove(CLS);
      assertEquals(
          "no gradient for trainable tensor '" + CLS + "'",
          assertThrows(IllegalArgumentException.class, () -> update.apply(state, g2)).getMessage());
      LinkedHashMap<String, HostTensor> g4 = TestModels.randomWeights(SHAPES, 0.3, 5);
      g4.get(CLS).data()[3] = Float.NaN;
      String msg =
          assertThrows(IllegalArgumentException.class, () -> update.apply(state, g4)).getMessage();
      assertTrue(msg.startsWith("gradient of '" + CLS + "' is not finite"), msg);
      assertEquals(0, state.step());
      assertClose(w, state.weights(), 0f, "weights after rejected updates");
    }
  }

  @Test
  void theHostUpdateContinuesAStateTheDeviceHeld() {
    PruningConfig p = pruning(PruningCriterion.MOVEMENT, false);
    OptimizerConfig o = optimizer(0.01, 0.05);
    DriverUpdate host = new DriverUpdate(p, o);
    TrainingState expected = host.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
    TrainingState mixed;
    try (DeviceDriverUpdate device = new DeviceDriverUpdate(p, o, DEVICE)) {
      mixed = device.initialState(TestModels.randomWeights(SHAPES, 0.5, 1));
      for (long t = 0; t < 2; t++) {
        host.apply(expected, TestModels.randomWeights(SHAPES, 0.3, 100 + t));
        device.apply(mixed, TestModels.randomWeights(SHAPES, 0.3, 100 + t));
      }
      host.apply(expected, TestModels.randomWeights(SHAPES, 0.3, 102));
      host.apply(mixed, TestModels.randomWeights(SHAPES, 0.3, 102));
      assertFalse(mixed.onDevice());
      host.apply(expected, TestModels.randomWeights(SHAPES, 0.3, 103));
      device.apply(mixed, TestModels.randomWeights(SHAPES, 0.3, 103));
    }
    // closing the device update copied the state back
    assertFalse(mixed.onDevice());
    assertEquals(4, mixed.step());
    assertClose(expected.weights(), mixed.weights(), 0f, "weights");
    assertClose(expected.masks(), mixed.masks(), 0f, "masks");
    assertClose(expected.scores(), mixed.scores(), 0f, "scores");
  }

  @Test
  void halfBlocksOfTheStreamAreTheHostEncoding() {
    // the fp16 stream is HalfBlocks over the fp32 stream, with blocks across tensor boundaries
    PruningConfig p = pruning(PruningCriterion.MAGNITUDE, false);
    try (DeviceDriverUpdate device = new DeviceDriverUpdate(p, optimizer(0, 1), DEVICE)) {
      BertConfig wider =
          BertConfig.builder()
              .vocabSize(12)
              .hiddenSize(32)
              .numHiddenLayers(2)
              .numAttentionHeads(2)
              .intermediateSize(64)
              .build();
      TrainingState state =
          device.initialState(TestModels.randomWeights(BertInit.shapes(wider), 0.5, 1));
      List<String> names = device.trainableNames(state);
      MaskSet bits = device.maskSet(state);
      float[] fp32 = device.pack(state, names, bits, WirePrecision.FP32).fp32Stream();
      assertTrue(fp32.length > 2 * HalfBlocks.BLOCK);
      HalfBlocks.Encoded e = HalfBlocks.encode(fp32);
      HalfBlocks.Encoded got = device.pack(state, names, bits, WirePrecision.FP16).halfStream();
      assertArrayEquals(e.halves(), got.halves());
      assertArrayEquals(e.exponents(), got.exponents());
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = PruningCriterion.class,
      names = {"MOVEMENT", "MAGNITUDE"})
  void maskBitsFromTheTopKRowsEqualTheHostBitsForPartWords(PruningCriterion criterion) {
    // 6 x 6 and 6 x 10 matrices: 36 and 60 entries, no whole 64-bit word, so every row of both
    // top-k groups is padded; steps without a maskSet call leave no bits behind on the device
    BertConfig odd =
        BertConfig.builder()
            .vocabSize(12)
            .hiddenSize(6)
            .numHiddenLayers(2)
            .numAttentionHeads(2)
            .intermediateSize(10)
            .build();
    Map<String, int[]> shapes = BertInit.shapes(odd);
    try (DeviceDriverUpdate device =
        new DeviceDriverUpdate(pruning(criterion, false), optimizer(0, 1), DEVICE)) {
      TrainingState state = device.initialState(TestModels.randomWeights(shapes, 0.5, 4));
      int held = -1;
      for (long t = 0; t < 5; t++) {
        device.apply(state, TestModels.randomWeights(shapes, 0.3, 40 + t));
        if (t % 2 == 1) {
          continue;
        }
        MaskSet bits = device.maskSet(state);
        MaskSet expected = MaskSet.of(state.masks());
        assertEquals(
            new ArrayList<>(expected.names()),
            new ArrayList<>(bits.names()),
            "order of the masks, step " + t);
        assertTrue(expected.sameBits(bits), "mask bits step " + t);
        int pruned = 0;
        for (String n : expected.names()) {
          assertEquals(expected.kept(n), bits.kept(n), n);
          pruned += state.masks().get(n).numel() - bits.kept(n);
        }
        assertTrue(pruned > 0, "the masks prune something at step " + t);
        if (held < 0) {
          held = device.residentArrays();
        }
        assertEquals(held, device.residentArrays(), "arrays on the device after step " + t);
      }
    }
  }

  static List<String> names(Map<String, ?> m) {
    return new ArrayList<>(m.keySet());
  }
}
