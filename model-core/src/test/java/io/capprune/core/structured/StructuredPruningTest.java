package io.capprune.core.structured;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.BertInputs;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.bert.StructuredMasks;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.checkpoint.CheckpointStore;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.checkpoint.ModelInspection;
import io.capprune.core.loss.CapLoss;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.Representation;
import io.capprune.core.loss.Targets;
import io.capprune.core.optim.LinearWarmupDecay;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.PruningConfig;
import io.capprune.core.prune.PruningCriterion;
import io.capprune.core.prune.SparsitySchedule;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.structured.UnitMasks.Unit;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import io.capprune.core.testing.TestModels;
import io.capprune.core.train.MicroBatch;
import io.capprune.core.train.TokenBatch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * CAP-f on a tiny model: importance gradient, selection, sequence, fixed masks, physical removal.
 */
class StructuredPruningTest {
  static final int C = 3;

  /** 3 layers, hidden 16, 4 heads of 4, FFN 12; dropout 0 (deterministic). */
  static final BertConfig CONFIG = TestModels.dropoutFree(3, 4, 12);

  NDManager base;

  @BeforeAll
  static void engine() {
    DjlRuntime.start(1);
  }

  @BeforeEach
  void open() {
    base = NDManager.newBaseManager();
  }

  @AfterEach
  void close() {
    base.close();
  }

  static Map<String, HostTensor> params(long seed) {
    return TestModels.randomParams(CONFIG, new SplittableRandom(seed)::nextGaussian, 0.4);
  }

  static MicroBatch batch(int[] rows) {
    List<int[]> ids = new ArrayList<>();
    List<byte[]> types = new ArrayList<>();
    int[] labels = new int[rows.length];
    for (int i = 0; i < rows.length; i++) {
      SplittableRandom rng = new SplittableRandom(500 + rows[i]);
      int len = 4 + rng.nextInt(6);
      int[] x = new int[len];
      x[0] = 2;
      x[len - 1] = 3;
      for (int j = 1; j < len - 1; j++) {
        x[j] = 5 + rng.nextInt(CONFIG.vocabSize() - 5);
      }
      ids.add(x);
      types.add(new byte[len]);
      labels[i] = rows[i] % C;
    }
    return new MicroBatch(TokenBatch.pad(ids, types, 0, 0), Targets.classes(labels), rows);
  }

  static RepresentationBank bank(int n) {
    SplittableRandom rng = new SplittableRandom(3);
    long[] index = new long[n];
    int[] labels = new int[n];
    float[] teacher = new float[n * C];
    for (int i = 0; i < n; i++) {
      index[i] = i;
      labels[i] = i % C;
    }
    for (int i = 0; i < teacher.length; i++) {
      teacher[i] = (float) (2 * rng.nextGaussian());
    }
    RepresentationBank bank =
        new RepresentationBank(index, labels, teacher, C, CONFIG.hiddenSize());
    for (Kind k : new Kind[] {Kind.PRE, Kind.FINE, Kind.SNAP}) {
      float[] v = new float[n * CONFIG.hiddenSize()];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) rng.nextGaussian();
      }
      bank.addSlice(k, v);
    }
    return bank;
  }

  Map<String, NDArray> onDevice(NDManager m, Map<String, HostTensor> p, DataType dtype) {
    Map<String, NDArray> out = new LinkedHashMap<>();
    p.forEach((k, v) -> out.put(k, NDArrays.toNDArray(m, v, dtype)));
    return out;
  }

  /**
   * The CAP loss (CE, KD, PrC/FiC/SnC) at masks given as flat arrays, float64, eval mode. Extra
   * negatives, if the loss uses any, come from the engine's generator: seed it before calling.
   */
  double loss(
      Map<String, NDArray> params,
      double[] heads,
      double[] neurons,
      MicroBatch mb,
      RepresentationBank bank,
      CapLoss capLoss) {
    try (NDManager m = base.newSubManager()) {
      StructuredMasks masks =
          new StructuredMasks(
              m.create(heads, new Shape(CONFIG.numHiddenLayers(), CONFIG.numAttentionHeads())),
              m.create(neurons, new Shape(CONFIG.numHiddenLayers(), CONFIG.intermediateSize())));
      BertInputs in = mb.tokens().toInputs(m);
      var out = new BertForSequenceClassification(CONFIG).forward(params, in, false, masks);
      NDArray z =
          Representation.compute(
              capLoss.config().representation(),
              out.classifierInput(),
              out.lastHiddenState(),
              in.attentionMask());
      return capLoss
          .compute(out.logits(), z, mb.targets(), bank, mb.bankRows())
          .total()
          .toType(DataType.FLOAT64, false)
          .getDouble();
    }
  }

  @Test
  void importanceIsAbsoluteMaskGradientSummedOverBatches() {
    Map<String, NDArray> params = onDevice(base, params(1), DataType.FLOAT64);
    RepresentationBank bank = bank(12);
    // CE + KD: the contrastive terms use detached in-batch copies of z (reference behaviour), so
    // their autograd gradient is by design not the finite difference of the loss value.
    CapLoss capLoss = new CapLoss(CapLossConfig.defaults().withContrastive(false));
    UnitMasks masks = UnitMasks.allKept(CONFIG);
    masks.prune(Unit.HEAD, 1, 2); // a pruned head still gets a gradient (reference edge case)
    masks.prune(Unit.NEURON, 0, 5);
    List<MicroBatch> batches =
        List.of(batch(new int[] {0, 1, 2, 3}), batch(new int[] {4, 5, 6, 7, 8}));
    long seed = 9;
    ImportanceScores s =
        new MaskImportance(new BertForSequenceClassification(CONFIG), capLoss)
            .accumulate(base, params, masks, batches, bank, seed, DataType.FLOAT64);
    assertEquals(9, s.examples());

    int hpl = CONFIG.numAttentionHeads();
    int npl = CONFIG.intermediateSize();
    double[] h0 = new double[CONFIG.numHiddenLayers() * hpl];
    double[] n0 = new double[CONFIG.numHiddenLayers() * npl];
    for (int l = 0; l < CONFIG.numHiddenLayers(); l++) {
      for (int i = 0; i < hpl; i++) {
        h0[l * hpl + i] = masks.isKept(Unit.HEAD, l, i) ? 1 : 0;
      }
      for (int i = 0; i < npl; i++) {
        n0[l * npl + i] = masks.isKept(Unit.NEURON, l, i) ? 1 : 0;
      }
    }
    double eps = 1e-5;
    int[] headsChecked = {0, 1 * hpl + 2, 2 * hpl + 3};
    int[] neuronsChecked = {5, npl + 7, 2 * npl + 11};
    for (boolean head : new boolean[] {true, false}) {
      for (int idx : head ? headsChecked : neuronsChecked) {
        double expected = 0;
        for (int b = 0; b < batches.size(); b++) {
          double[] hp = h0.clone();
          double[] hm = h0.clone();
          double[] np = n0.clone();
          double[] nm = n0.clone();
          (head ? hp : np)[idx] += eps;
          (head ? hm : nm)[idx] -= eps;
          // no contrastive terms: no negatives are drawn, so the generator's state does not matter
          double d =
              (loss(params, hp, np, batches.get(b), bank, capLoss)
                      - loss(params, hm, nm, batches.get(b), bank, capLoss))
                  / (2 * eps);
          expected += Math.abs(d);
        }
        double got = (head ? s.heads() : s.neurons())[idx];
        assertTrue(
            expected > 1e-6, "finite difference is ~0 for " + (head ? "head " : "neuron ") + idx);
        assertEquals(expected, got, 1e-6 + 1e-5 * expected, (head ? "head " : "neuron ") + idx);
      }
    }
  }

  @Test
  void contrastiveTermsChangeTheImportance() {
    Map<String, NDArray> params = onDevice(base, params(1), DataType.FLOAT32);
    RepresentationBank bank = bank(12);
    List<MicroBatch> batches = List.of(batch(new int[] {0, 1, 2, 3}));
    BertForSequenceClassification model = new BertForSequenceClassification(CONFIG);
    ImportanceScores plain =
        new MaskImportance(model, new CapLoss(CapLossConfig.defaults().withContrastive(false)))
            .accumulate(
                base, params, UnitMasks.allKept(CONFIG), batches, bank, 1, DataType.FLOAT32);
    ImportanceScores cap =
        new MaskImportance(model, new CapLoss(CapLossConfig.defaults()))
            .accumulate(
                base, params, UnitMasks.allKept(CONFIG), batches, bank, 1, DataType.FLOAT32);
    assertTrue(Math.abs(plain.heads()[0] - cap.heads()[0]) > 1e-4 * Math.abs(plain.heads()[0]));
  }

  @Test
  void selectionIsGlobalCumulativeAndKeepsAHeadPerLayer() {
    // 3 layers x 4 heads; layer 2 has all the low scores.
    double[] heads = {0.5, 0.6, 0.7, 0.8, 0.55, 0.65, 0.75, 0.85, 0.01, 0.02, 0.03, 0.04};
    double[] neurons = new double[3 * 12];
    for (int i = 0; i < neurons.length; i++) {
      neurons[i] = (i * 7919) % 36;
    }
    ImportanceScores s = new ImportanceScores(3, heads, neurons, 10);
    UnitMasks first = UnitSelector.select(s, UnitMasks.allKept(CONFIG), 5, 10);
    // Layer 2 keeps its best head (0.04); then 0.5 and 0.55 go.
    assertEquals(1, first.kept(Unit.HEAD, 2));
    assertTrue(first.isKept(Unit.HEAD, 2, 3));
    assertTrue(!first.isKept(Unit.HEAD, 0, 0) && !first.isKept(Unit.HEAD, 1, 0));
    assertEquals(12 - 5, first.totalKept(Unit.HEAD));
    assertEquals(36 - 10, first.totalKept(Unit.NEURON));
    // Cumulative: the next step prunes 2 more heads on top, never resurrects.
    UnitMasks second = UnitSelector.select(s, first, 7, 20);
    assertEquals(12 - 7, second.totalKept(Unit.HEAD));
    for (int l = 0; l < 3; l++) {
      for (int i = 0; i < 4; i++) {
        assertTrue(!(second.isKept(Unit.HEAD, l, i) && !first.isKept(Unit.HEAD, l, i)));
      }
      assertTrue(second.kept(Unit.HEAD, l) >= 1);
    }
    assertThrows(IllegalArgumentException.class, () -> UnitSelector.select(s, second, 10, 20));
  }

  @Test
  void theProtectedHeadIsAKeptOneEvenWhenAPrunedHeadScoresHighest() {
    // Layer 0 is down to head 1; its pruned head 0 scores highest. Protecting head 0 would let the
    // selection prune head 1 and leave layer 0 with no head.
    UnitMasks current = UnitMasks.allKept(CONFIG);
    current.prune(Unit.HEAD, 0, 0);
    current.prune(Unit.HEAD, 0, 2);
    current.prune(Unit.HEAD, 0, 3);
    double[] heads = {0.99, 0.01, 0.02, 0.03, 0.5, 0.6, 0.7, 0.8, 0.55, 0.65, 0.75, 0.85};
    ImportanceScores s = new ImportanceScores(3, heads, new double[3 * 12], 10);
    UnitMasks next = UnitSelector.select(s, current, 5, 0);
    assertTrue(next.isKept(Unit.HEAD, 0, 1));
    assertEquals(1, next.kept(Unit.HEAD, 0));
    assertEquals(12 - 5, next.totalKept(Unit.HEAD));
  }

  @Test
  void normalisationDividesEachLayerByItsL2Norm() {
    ImportanceScores s =
        new ImportanceScores(2, new double[] {3, 4, 0, 0}, new double[] {1, 0, 0, 2}, 1)
            .normalizedPerLayer();
    assertEquals(0.6, s.heads()[0], 1e-12);
    assertEquals(0.8, s.heads()[1], 1e-12);
    assertEquals(0.0, s.heads()[2], 1e-12); // an all-zero layer stays 0, not NaN
    assertEquals(1.0, s.neurons()[3], 1e-12);
  }

  @Test
  void referenceSequenceCountsMatchCapReference() {
    PruneSequence seq = PruneSequence.reference();
    int[] heads = new int[9];
    for (int s = 0; s < 9; s++) {
      heads[s] = seq.headsPrunedAfter(s, 144);
    }
    org.junit.jupiter.api.Assertions.assertArrayEquals(
        new int[] {14, 28, 43, 57, 72, 86, 100, 115, 129}, heads);
    assertEquals(3686, seq.neuronsPrunedAfter(0, 36864));
    assertEquals(33177, seq.neuronsPrunedAfter(8, 36864));
    assertThrows(
        IllegalArgumentException.class,
        () -> new PruneSequence(List.of(0.2, 0.1), List.of(0.1, 0.2)));
  }

  /**
   * Masks with unequal FFN widths per layer (so cap_intermediate_sizes), a layer down to one head.
   */
  static UnitMasks someMasks() {
    return UnitMasks.of(
        CONFIG,
        Map.of(0, List.of(1), 2, List.of(0, 2, 3)),
        Map.of(0, List.of(0, 3, 4), 1, List.of(11), 2, List.of(1, 2, 3, 4, 5, 6, 7, 8)));
  }

  float[] logits(Map<String, HostTensor> params, BertConfig config, UnitMasks masks) {
    try (NDManager m = base.newSubManager()) {
      MicroBatch mb = batch(new int[] {0, 1, 2, 3, 4, 5});
      StructuredMasks sm = masks == null ? null : masks.toNDArrays(m, DataType.FLOAT32, false);
      return new BertForSequenceClassification(config)
          .forward(onDevice(m, params, DataType.FLOAT32), mb.tokens().toInputs(m), false, sm)
          .logits()
          .toFloatArray();
    }
  }

  static void assertClose(float[] a, float[] b, double tol) {
    assertEquals(a.length, b.length);
    double max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    assertTrue(max <= tol, "max |difference| " + max + " > " + tol);
  }

  @Test
  void elementMasksComputeWhatUnitMasksCompute() {
    Map<String, HostTensor> p = params(2);
    UnitMasks masks = someMasks();
    LinkedHashMap<String, HostTensor> effective = new LinkedHashMap<>();
    Map<String, HostTensor> wm = masks.weightMasks(CONFIG);
    p.forEach(
        (name, t) -> {
          HostTensor m = wm.get(name);
          HostTensor e = t.copy();
          if (m != null) {
            for (int i = 0; i < e.data().length; i++) {
              e.data()[i] *= m.data()[i];
            }
          }
          effective.put(name, e);
        });
    assertClose(logits(p, CONFIG, masks), logits(effective, CONFIG, null), 1e-5);
    // and masking changes the output, so the comparison can fail
    float[] dense = logits(p, CONFIG, null);
    float[] masked = logits(p, CONFIG, masks);
    double diff = 0;
    for (int i = 0; i < dense.length; i++) {
      diff = Math.max(diff, Math.abs(dense[i] - masked[i]));
    }
    assertTrue(diff > 1e-3, "masks changed nothing: " + diff);
  }

  @Test
  void physicallySmallerModelGivesTheMaskedLogitsAlsoAfterSaveAndLoad(@TempDir Path dir)
      throws Exception {
    Map<String, HostTensor> p = params(3);
    UnitMasks masks = someMasks();
    StructuredShrink.Result r = StructuredShrink.shrink(CONFIG, p, masks);
    BertConfig c = r.config();
    assertEquals(3, c.headsInLayer(0));
    assertEquals(4, c.headsInLayer(1));
    assertEquals(1, c.headsInLayer(2));
    assertEquals(List.of(9, 11, 4), c.layerIntermediateSizes());
    assertEquals(Map.of(0, List.of(1), 2, List.of(0, 2, 3)), c.prunedHeads());
    assertTrue(r.parameters() < p.values().stream().mapToLong(HostTensor::numel).sum());
    float[] masked = logits(p, CONFIG, masks);
    assertClose(masked, logits(r.weights(), c, null), 1e-4);

    List<String> vocab = new ArrayList<>();
    for (int i = 0; i < CONFIG.vocabSize(); i++) {
      vocab.add("t" + i);
    }
    CheckpointStore.write(
        new HfCheckpoint("shrunk", c, r.weights(), vocab),
        dir.toString(),
        new org.apache.hadoop.conf.Configuration(),
        true);
    String json = Files.readString(dir.resolve("config.json"));
    assertTrue(json.contains("\"pruned_heads\""), json);
    assertTrue(json.contains("\"cap_intermediate_sizes\""), json);
    HfCheckpoint back = CheckpointStore.read(dir.toString());
    assertEquals(c, back.config());
    assertClose(masked, logits(back.tensors(), back.config(), null), 1e-4);
    String text = ModelInspection.of(back).toText();
    assertTrue(text.contains("heads kept"), text);
  }

  @Test
  void equalWidthsBecomeIntermediateSizeAndAnEmptyLayerKeepsAZeroNeuron() {
    Map<String, HostTensor> p = params(4);
    List<Integer> all = new ArrayList<>();
    for (int i = 0; i < 12; i++) {
      all.add(i);
    }
    UnitMasks equal =
        UnitMasks.of(
            CONFIG, Map.of(), Map.of(0, List.of(0, 1), 1, List.of(2, 3), 2, List.of(4, 5)));
    StructuredShrink.Result r = StructuredShrink.shrink(CONFIG, p, equal);
    assertEquals(10, r.config().intermediateSize());
    assertTrue(r.config().layerIntermediateSizes().isEmpty());
    assertTrue(r.config().prunedHeads().isEmpty());
    assertClose(logits(p, CONFIG, equal), logits(r.weights(), r.config(), null), 1e-4);

    // Unequal widths padded with zero neurons: one intermediate_size, same logits.
    StructuredShrink.Result padded = StructuredShrink.shrink(CONFIG, p, someMasks(), true);
    assertEquals(11, padded.config().intermediateSize());
    assertTrue(padded.config().layerIntermediateSizes().isEmpty());
    assertClose(
        logits(p, CONFIG, someMasks()), logits(padded.weights(), padded.config(), null), 1e-4);

    UnitMasks empty = UnitMasks.of(CONFIG, Map.of(1, List.of(0, 1, 2)), Map.of(1, all));
    StructuredShrink.Result e = StructuredShrink.shrink(CONFIG, p, empty);
    assertEquals(1, e.config().intermediateSizeOf(1));
    assertClose(logits(p, CONFIG, empty), logits(e.weights(), e.config(), null), 1e-4);
  }

  @Test
  void fixedCriterionKeepsMasksAndMaskedWeightsOutOfTheUpdate() {
    Map<String, HostTensor> p = params(5);
    LinkedHashMap<String, HostTensor> weights = new LinkedHashMap<>();
    p.forEach((k, v) -> weights.put(k, v.copy()));
    PruningConfig fixed =
        new PruningConfig(
            PruningCriterion.FIXED, SparsitySchedule.constant(1.0, 10), false, 0, false, 0);
    OptimizerConfig opt =
        new OptimizerConfig(1e-2, 1e-2, 0.01, 0.9, 0.999, 1e-8, 1.0, new LinearWarmupDecay(1, 10));
    DriverUpdate update = new DriverUpdate(fixed, opt);
    TrainingState state = update.initialState(weights);
    UnitMasks masks = someMasks();
    masks
        .weightMasks(CONFIG)
        .forEach(
            (name, m) ->
                System.arraycopy(m.data(), 0, state.masks().get(name).data(), 0, m.numel()));
    Map<String, HostTensor> before = new LinkedHashMap<>();
    state.masks().forEach((k, v) -> before.put(k, v.copy()));
    Map<String, HostTensor> grads = new LinkedHashMap<>();
    SplittableRandom rng = new SplittableRandom(8);
    state
        .weights()
        .forEach(
            (k, v) -> {
              HostTensor g = HostTensor.zeros(v.shape());
              for (int i = 0; i < g.data().length; i++) {
                g.data()[i] = (float) rng.nextGaussian();
              }
              grads.put(k, g);
            });
    update.apply(state, grads);
    update.apply(state, grads);
    state
        .masks()
        .forEach(
            (k, v) ->
                org.junit.jupiter.api.Assertions.assertArrayEquals(
                    before.get(k).data(), v.data(), k));
    String o = "encoder.layer.0.attention.output.dense.weight";
    // kept weights moved, the effective weights under a pruned head are 0
    assertTrue(state.weights().get(o).data()[0] != p.get(o).data()[0]);
    HostTensor eff = state.effectiveWeights().get(o);
    for (int r = 0; r < 16; r++) {
      for (int col = 4; col < 8; col++) {
        assertTrue(eff.data()[r * 16 + col] == 0f, "effective weight under a pruned head");
      }
    }
  }
}
