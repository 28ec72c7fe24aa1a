package io.capprune.core.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.bank.DeviceBank;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.bert.BertForSequenceClassification;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.exchange.HalfBlocks;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.loss.CapLoss;
import io.capprune.core.loss.CapLossConfig;
import io.capprune.core.loss.LossTerms;
import io.capprune.core.loss.Targets;
import io.capprune.core.prune.ParameterNames;
import io.capprune.core.tensor.FlatParameters;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import io.capprune.core.testing.TestModels;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The gradient WorkerStep returns is the gradient of the loss it reports: the full CAP objective
 * (CE + KD + PrC, FiC and SnC with R = 2, unsupervised and supervised, extra negatives) through the
 * whole BERT forward pass, against float64 central differences of {@link WorkerStep.Result#terms}.
 */
class WorkerStepGradientTest {

  static final int N = 24;
  static final int C = 3;
  static final long STEP_SEED = 7;

  /**
   * 2 layers, hidden 16, 2 heads, FFN 32; dropout 0 so that the training forward is deterministic.
   */
  static final BertConfig CONFIG = TestModels.dropoutFree(2, 2, 32);

  /**
   * One per kind of tensor: a prunable matrix (first layer, farthest from the loss), biases,
   * LayerNorm, heads.
   */
  static final List<String> CHECKED =
      List.of(
          "encoder.layer.0.attention.self.query.weight",
          "encoder.layer.1.output.dense.weight",
          "encoder.layer.0.attention.output.dense.bias",
          "encoder.layer.1.attention.output.LayerNorm.weight",
          "pooler.dense.weight",
          "pooler.dense.bias",
          "classifier.weight",
          "classifier.bias");

  /** Read-only in WorkerStep, so one for all tests. */
  static final RepresentationBank BANK = bank();

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

  /**
   * Every entry random and larger than BERT's init (biases and LayerNorm too), so no gradient is
   * accidentally 0 or linear in the entry.
   */
  static LinkedHashMap<String, HostTensor> randomParams(BertConfig c, long seed) {
    return TestModels.randomParams(c, new SplittableRandom(seed)::nextGaussian, 0.3);
  }

  static float[] unitRows(SplittableRandom rng, int rows, int h) {
    float[] v = new float[rows * h];
    for (int i = 0; i < rows; i++) {
      double[] x = new double[h];
      double n = 0;
      for (int j = 0; j < h; j++) {
        x[j] = rng.nextGaussian();
        n += x[j] * x[j];
      }
      for (int j = 0; j < h; j++) {
        v[i * h + j] = (float) (x[j] / Math.sqrt(n));
      }
    }
    return v;
  }

  static int label(int row) {
    return (row * 7) % C;
  }

  /** N rows with global indices 100 + 3i, labels, teacher logits and PRE, FINE, 2 SNAP slices. */
  static RepresentationBank bank() {
    SplittableRandom rng = new SplittableRandom(11);
    long[] index = new long[N];
    int[] labels = new int[N];
    for (int i = 0; i < N; i++) {
      index[i] = 100 + 3L * i;
      labels[i] = label(i);
    }
    float[] teacher = new float[N * C];
    for (int i = 0; i < teacher.length; i++) {
      teacher[i] = (float) (2 * rng.nextGaussian());
    }
    int h = CONFIG.hiddenSize();
    RepresentationBank bank = new RepresentationBank(index, labels, teacher, C, h);
    bank.addSlice(Kind.PRE, unitRows(rng, N, h));
    bank.addSlice(Kind.FINE, unitRows(rng, N, h));
    bank.addSlice(Kind.SNAP, unitRows(rng, N, h));
    bank.addSlice(Kind.SNAP, unitRows(rng, N, h));
    return bank;
  }

  /**
   * [CLS] w… [SEP] of 4-9 tokens per bank row (so micro-batches pad), second segment on odd rows.
   */
  static MicroBatch microBatch(int[] rows) {
    List<int[]> ids = new ArrayList<>();
    List<byte[]> types = new ArrayList<>();
    int[] labels = new int[rows.length];
    for (int i = 0; i < rows.length; i++) {
      SplittableRandom rng = new SplittableRandom(1000 + rows[i]);
      int len = 4 + rng.nextInt(6);
      int[] x = new int[len];
      byte[] t = new byte[len];
      x[0] = 2;
      x[len - 1] = 3;
      for (int j = 1; j < len - 1; j++) {
        x[j] = 5 + rng.nextInt(CONFIG.vocabSize() - 5);
      }
      if (rows[i] % 2 == 1) {
        for (int j = len / 2; j < len; j++) {
          t[j] = 1;
        }
      }
      ids.add(x);
      types.add(t);
      labels[i] = label(rows[i]);
    }
    return new MicroBatch(TokenBatch.pad(ids, types, 0, 0), Targets.classes(labels), rows);
  }

  static LinkedHashMap<String, HostTensor> trainable(Map<String, HostTensor> all) {
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    all.forEach(
        (name, t) -> {
          if (!ParameterNames.isEmbedding(name)) {
            out.put(name, t);
          }
        });
    return out;
  }

  Map<String, NDArray> frozen(Map<String, HostTensor> all, DataType dtype) {
    Map<String, NDArray> out = new LinkedHashMap<>();
    all.forEach(
        (name, t) -> {
          if (ParameterNames.isEmbedding(name)) {
            out.put(name, NDArrays.toNDArray(base, t, dtype));
          }
        });
    return out;
  }

  WorkerStep.Result run(
      CapLossConfig loss,
      Map<String, NDArray> frozen,
      Map<String, HostTensor> trainable,
      List<MicroBatch> mbs,
      int globalBatch,
      DataType dtype) {
    WorkerStep step = new WorkerStep(new BertForSequenceClassification(CONFIG), new CapLoss(loss));
    return step.run(base, frozen, trainable, mbs, BANK, globalBatch, STEP_SEED, dtype);
  }

  static double total(WorkerStep.Result r) {
    return r.terms().total();
  }

  /** The partition's 8 rows of the global batch. */
  static final int[] ROWS = {0, 3, 4, 9, 13, 17, 20, 22};

  /** Each row its own micro-batch. */
  static List<MicroBatch> singleRows() {
    List<MicroBatch> out = new ArrayList<>();
    for (int row : ROWS) {
      out.add(microBatch(new int[] {row}));
    }
    return out;
  }

  /** 6 extras per call: PRE and FINE 6 rows, SNAP 3 rows × 2 slices. */
  static final CapLossConfig CAP = CapLossConfig.defaults().withExtraExamples(6);

  /** Central difference of the reported total loss in entry i of tensor name. */
  double centralDifference(
      CapLossConfig loss,
      Map<String, NDArray> frozen,
      Map<String, HostTensor> trainable,
      List<MicroBatch> mbs,
      String name,
      int i) {
    double h = Math.scalb(1.0, -12);
    float[] w = trainable.get(name).data();
    float original = w[i];
    float plus = (float) (original + h);
    float minus = (float) (original - h);
    try {
      w[i] = plus;
      double lossPlus = total(run(loss, frozen, trainable, mbs, ROWS.length, DataType.FLOAT64));
      w[i] = minus;
      double lossMinus = total(run(loss, frozen, trainable, mbs, ROWS.length, DataType.FLOAT64));
      // the float32 parameter holds exactly these two values, so divide by their true distance
      return (lossPlus - lossMinus) / ((double) plus - minus);
    } finally {
      w[i] = original;
    }
  }

  static int argMaxAbs(float[] g) {
    int best = 0;
    for (int i = 1; i < g.length; i++) {
      if (Math.abs(g[i]) > Math.abs(g[best])) {
        best = i;
      }
    }
    return best;
  }

  /**
   * Micro-batches of one row: the only in-batch candidate is then the anchor's own detached copy,
   * whose score is replaced by −1e6, so the reported loss is a function of the parameters alone and
   * its derivative must be exactly what autograd returns. (With more rows per micro-batch the other
   * rows' detached vectors are candidates that the gradient ignores by design: next test.)
   */
  @Test
  void fullCapGradientMatchesCentralDifferencesThroughBert() {
    LinkedHashMap<String, HostTensor> all = randomParams(CONFIG, 5);
    Map<String, NDArray> frozen = frozen(all, DataType.FLOAT64);
    LinkedHashMap<String, HostTensor> trainable = trainable(all);
    List<MicroBatch> mbs = singleRows();

    WorkerStep.Result r = run(CAP, frozen, trainable, mbs, ROWS.length, DataType.FLOAT64);
    assertEquals(8, r.examples());
    LossTerms terms = r.terms();
    for (String term : List.of("ce", "kd", "prc", "snc", "fic")) {
      double v = terms.byName().get(term);
      assertTrue(v > 1e-3, term + " takes part: " + v);
    }
    // the weights enter the graph as float32 constants (NDArrays.scalar)
    assertEquals(
        0.1f * terms.ce() + 0.9f * terms.kd() + terms.prc() + terms.snc() + terms.fic(),
        total(r),
        1e-12,
        "total = 0.1 CE + 0.9 KD + PrC + SnC + FiC");

    int checkedEntries = 0;
    double worst = 0;
    for (String name : CHECKED) {
      float[] analytic = r.gradients().get(name);
      int largest = argMaxAbs(analytic);
      double scale = Math.abs(analytic[largest]);
      assertTrue(scale > 1e-4, name + ": gradient is not trivially 0 (max " + scale + ")");
      SplittableRandom pick = new SplittableRandom(name.hashCode());
      int[] entries = {largest, pick.nextInt(analytic.length)};
      for (int i : entries) {
        double numeric = centralDifference(CAP, frozen, trainable, mbs, name, i);
        double reference = Math.max(Math.abs(numeric), 1e-2 * scale);
        assertEquals(
            numeric,
            analytic[i],
            1e-4 * reference,
            name + "[" + i + "]: WorkerStep gradient vs central difference of its loss");
        worst = Math.max(worst, Math.abs(numeric - analytic[i]) / reference);
        checkedEntries++;
      }
    }
    assertEquals(2 * CHECKED.size(), checkedEntries);
    System.out.printf(
        "WorkerStep full CAP gradient vs float64 central differences: %d entries of %d"
            + " tensors, worst relative error %.2e%n",
        checkedEntries, CHECKED.size(), worst);
  }

  /**
   * With all 8 rows in one micro-batch the other rows' detached vectors are candidates (negatives,
   * or supervised positives of the same label): they move with the parameters, so the loss value
   * moves more than its gradient says. That gap is the reference's stop-gradient (docs/cap-math.md
   * §1.4), not an error: CE + KD alone, which have no such candidates, match exactly on the same
   * batch.
   */
  @Test
  void inBatchCandidatesAreConstantsOfTheGradient() {
    LinkedHashMap<String, HostTensor> all = randomParams(CONFIG, 5);
    Map<String, NDArray> frozen = frozen(all, DataType.FLOAT64);
    LinkedHashMap<String, HostTensor> trainable = trainable(all);
    List<MicroBatch> one = List.of(microBatch(ROWS));
    String name = "pooler.dense.weight";

    float[] cap =
        run(CAP, frozen, trainable, one, ROWS.length, DataType.FLOAT64).gradients().get(name);
    int i = argMaxAbs(cap);
    double numeric = centralDifference(CAP, frozen, trainable, one, name, i);
    assertTrue(
        Math.abs(numeric - cap[i]) > 1e-2 * Math.abs(numeric),
        "detached in-batch candidates: gradient "
            + cap[i]
            + " vs derivative of the loss "
            + numeric);

    CapLossConfig plain = CAP.withContrastive(false);
    float[] g =
        run(plain, frozen, trainable, one, ROWS.length, DataType.FLOAT64).gradients().get(name);
    int j = argMaxAbs(g);
    assertEquals(
        centralDifference(plain, frozen, trainable, one, name, j),
        g[j],
        1e-4 * Math.abs(g[j]),
        "CE + KD on one micro-batch of 8");
  }

  @Test
  void contrastiveTermsReachTheEncoderGradient() {
    // Without this the check above could pass on the CE + KD part alone.
    LinkedHashMap<String, HostTensor> all = randomParams(CONFIG, 5);
    Map<String, NDArray> frozen = frozen(all, DataType.FLOAT64);
    LinkedHashMap<String, HostTensor> trainable = trainable(all);
    List<MicroBatch> mbs = singleRows();
    CapLossConfig cap = CAP;
    float[] with =
        run(cap, frozen, trainable, mbs, 8, DataType.FLOAT64)
            .gradients()
            .get("encoder.layer.0.attention.self.query.weight");
    float[] without =
        run(cap.withContrastive(false), frozen, trainable, mbs, 8, DataType.FLOAT64)
            .gradients()
            .get("encoder.layer.0.attention.self.query.weight");
    double diff = 0;
    double norm = 0;
    for (int i = 0; i < with.length; i++) {
      diff += (with[i] - without[i]) * (double) (with[i] - without[i]);
      norm += without[i] * (double) without[i];
    }
    assertTrue(
        Math.sqrt(diff) > 0.1 * Math.sqrt(norm),
        "contrastive part of the gradient "
            + Math.sqrt(diff)
            + " vs CE+KD part "
            + Math.sqrt(norm));
  }

  /**
   * The worker's own entry point, with the weights and the bank resident on the device as a worker
   * keeps them across steps: it computes what the heap adapter computes (same seed, same dropout
   * and negatives), step after step, and its fp16 wire gradient is exactly the host encoding of the
   * fp32 one.
   */
  @Test
  void deviceEntryPointMatchesTheHeapAdapterAndEncodesFp16OnTheDevice() {
    LinkedHashMap<String, HostTensor> all = randomParams(CONFIG, 8);
    Map<String, NDArray> frozen = frozen(all, DataType.FLOAT32);
    LinkedHashMap<String, HostTensor> trainable = trainable(all);
    List<MicroBatch> mbs =
        List.of(microBatch(new int[] {0, 3, 4, 9}), microBatch(new int[] {13, 17, 20}));
    WorkerStep step = new WorkerStep(new BertForSequenceClassification(CONFIG), new CapLoss(CAP));
    WorkerStep.Result heap =
        step.run(base, frozen, trainable, mbs, BANK, 8, STEP_SEED, DataType.FLOAT32);
    assertEquals(WirePrecision.FP32, heap.precision());
    assertEquals(List.copyOf(trainable.keySet()), heap.names());
    try (DeviceBank bank = DeviceBank.upload(base, BANK);
        NDManager weights = base.newSubManager()) {
      FlatParameters flat = FlatParameters.upload(weights, trainable);
      for (int repeat = 0; repeat < 2; repeat++) {
        WorkerStep.Result fp32 =
            step.run(
                base, frozen, flat, mbs, bank, 8, STEP_SEED, DataType.FLOAT32, WirePrecision.FP32);
        assertEquals(heap.terms(), fp32.terms(), "step " + repeat);
        assertArrayEquals(heap.flatGradient(), fp32.flatGradient(), 0f, "step " + repeat);
        assertEquals(7, fp32.examples());
        WorkerStep.Result fp16 =
            step.run(
                base, frozen, flat, mbs, bank, 8, STEP_SEED, DataType.FLOAT32, WirePrecision.FP16);
        assertEquals(WirePrecision.FP16, fp16.precision());
        assertEquals(null, fp16.fp32());
        HalfBlocks.Encoded host = HalfBlocks.encode(fp32.flatGradient());
        assertArrayEquals(
            host.halves(), fp16.fp16().halves(), "fp16 wire: the host encoder's halves");
        assertArrayEquals(host.exponents(), fp16.fp16().exponents(), "and its block exponents");
        assertEquals(heap.terms(), fp16.terms());
        // decoded and cut per tensor: within the block-scaled half tolerance of the fp32 gradient
        Map<String, float[]> exact = fp32.gradients();
        Map<String, float[]> half = fp16.gradients();
        assertEquals(List.copyOf(exact.keySet()), List.copyOf(half.keySet()));
        float max = 0;
        for (float v : fp32.flatGradient()) {
          max = Math.max(max, Math.abs(v));
        }
        for (String name : exact.keySet()) {
          float[] e = exact.get(name);
          float[] g = half.get(name);
          assertEquals(trainable.get(name).numel(), g.length, name);
          for (int i = 0; i < e.length; i++) {
            assertEquals(
                e[i], g[i], Math.abs(e[i]) * 0x1p-11 + max * 0x1p-24, name + "[" + i + "]");
          }
        }
      }
    }
    // another seed draws other negatives
    WorkerStep.Result other =
        step.run(base, frozen, trainable, mbs, BANK, 8, STEP_SEED + 1, DataType.FLOAT32);
    assertTrue(other.terms().prc() != heap.terms().prc(), "PrC with other negatives");
  }

  @Test
  void microBatchesAndPartitionsAddUpToTheBatchGradient() {
    // CE + KD only: with contrastive terms the in-batch candidates are the micro-batch by design.
    LinkedHashMap<String, HostTensor> all = randomParams(CONFIG, 6);
    Map<String, NDArray> frozen = frozen(all, DataType.FLOAT64);
    LinkedHashMap<String, HostTensor> trainable = trainable(all);
    CapLossConfig loss = CapLossConfig.defaults().withContrastive(false);
    int[] rows = {1, 2, 5, 8, 11, 14, 19, 23};
    int[] first = {1, 2, 5, 8};
    int[] second = {11, 14, 19, 23};

    WorkerStep.Result whole =
        run(loss, frozen, trainable, List.of(microBatch(rows)), 8, DataType.FLOAT64);
    WorkerStep.Result split =
        run(
            loss,
            frozen,
            trainable,
            List.of(microBatch(first), microBatch(second)),
            8,
            DataType.FLOAT64);
    // two partitions of one micro-batch each, summed as the driver's treeAggregate does
    WorkerStep.Result p1 =
        run(loss, frozen, trainable, List.of(microBatch(first)), 8, DataType.FLOAT64);
    WorkerStep.Result p2 =
        run(loss, frozen, trainable, List.of(microBatch(second)), 8, DataType.FLOAT64);

    assertEquals(8, split.examples());
    Map<String, Double> summed = p1.terms().plus(p2.terms()).byName();
    whole
        .terms()
        .byName()
        .forEach(
            (term, value) -> {
              assertEquals(value, split.terms().byName().get(term), 1e-12, term);
              assertEquals(value, summed.get(term), 1e-12, term);
            });
    assertTrue(whole.terms().kd() > 1e-3, "KD takes part");
    for (String name : trainable.keySet()) {
      float[] g = whole.gradients().get(name);
      float[] s = split.gradients().get(name);
      float[] a = p1.gradients().get(name);
      float[] b = p2.gradients().get(name);
      double scale = 0;
      for (float v : g) {
        scale = Math.max(scale, Math.abs(v));
      }
      if (name.endsWith("attention.self.key.bias")) {
        // adds the same q·b to every key of a query, which the softmax cancels: dL/db_k = 0
        assertTrue(scale < 1e-9, name + " has no gradient, got " + scale);
        continue;
      }
      assertTrue(scale > 1e-6, name + " has a gradient");
      float[] sum = new float[g.length];
      for (int i = 0; i < g.length; i++) {
        sum[i] = a[i] + b[i];
      }
      assertArrayEquals(g, s, (float) (1e-6 * scale), name + ": one micro-batch of 8 vs two of 4");
      assertArrayEquals(g, sum, (float) (1e-6 * scale), name + ": two partitions of 4 summed");
      // the halves differ from each other, so the equalities above are not trivial
      double halfDiff = 0;
      for (int i = 0; i < g.length; i++) {
        halfDiff = Math.max(halfDiff, Math.abs(a[i] - b[i]));
      }
      assertTrue(halfDiff > 1e-3 * scale, name + ": the two halves' gradients differ");
    }
  }
}
