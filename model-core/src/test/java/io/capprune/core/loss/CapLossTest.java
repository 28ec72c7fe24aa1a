package io.capprune.core.loss;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.capprune.core.bank.DeviceBank;
import io.capprune.core.bank.Negatives;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.bert.DjlRuntime;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class CapLossTest {

  private static final int N = 12;
  private static final int H = 8;
  private static final int C = 3;
  private static final int[] ROWS = {0, 3, 5, 7};
  private static final long SEED = 99;

  private static float[] unitRows(SplittableRandom random, int rows) {
    float[] v = new float[rows * H];
    for (int i = 0; i < rows; i++) {
      double n = 0;
      double[] x = new double[H];
      for (int h = 0; h < H; h++) {
        x[h] = random.nextGaussian();
        n += x[h] * x[h];
      }
      for (int h = 0; h < H; h++) {
        v[i * H + h] = (float) (x[h] / Math.sqrt(n));
      }
    }
    return v;
  }

  private static int[] labels() {
    int[] y = new int[N];
    for (int i = 0; i < N; i++) {
      y[i] = (i * 7) % C;
    }
    return y;
  }

  private static RepresentationBank bank(boolean regression, int snapshots) {
    SplittableRandom random = new SplittableRandom(17);
    long[] index = new long[N];
    for (int i = 0; i < N; i++) {
      index[i] = 500 + 3L * i;
    }
    int classes = regression ? 1 : C;
    float[] teacher = new float[N * classes];
    for (int i = 0; i < teacher.length; i++) {
      teacher[i] = (float) random.nextGaussian() * 2;
    }
    RepresentationBank bank =
        new RepresentationBank(index, regression ? null : labels(), teacher, classes, H);
    bank.addSlice(Kind.PRE, unitRows(random, N));
    bank.addSlice(Kind.FINE, unitRows(random, N));
    for (int s = 0; s < snapshots; s++) {
      bank.addSlice(Kind.SNAP, unitRows(random, N));
    }
    return bank;
  }

  private static int[] batchLabels() {
    int[] all = labels();
    int[] y = new int[ROWS.length];
    for (int i = 0; i < ROWS.length; i++) {
      y[i] = all[ROWS[i]];
    }
    return y;
  }

  @Test
  void defaultsAreTheUnstructuredGlueScriptValues() {
    CapLossConfig c = CapLossConfig.defaults();
    assertEquals(0.1f, c.wCe());
    assertEquals(0.9f, c.wKd());
    assertEquals(2.0f, c.kdTemperature());
    assertEquals(0.1f, c.tau());
    assertEquals(0.1f, c.wU());
    assertEquals(10f, c.wS());
    assertEquals(4096, c.extraExamples());
    assertEquals(Representation.Mode.POOLER, c.representation());
    assertEquals(EnumSet.allOf(Kind.class), c.banks());
    assertTrue(c.contrastive());
    assertEquals(
        "tau must be > 0, got -1.0",
        assertThrows(IllegalArgumentException.class, () -> c.withTau(-1f)).getMessage());
    assertEquals(
        "wS must be a finite value >= 0, got NaN",
        assertThrows(IllegalArgumentException.class, () -> c.withSupervisedWeight(Float.NaN))
            .getMessage());
    assertEquals(
        "extraExamples must be >= 0, got -5",
        assertThrows(IllegalArgumentException.class, () -> c.withExtraExamples(-5)).getMessage());
  }

  /**
   * CapLoss's draws, redrawn: the engine reseeded, one draw per bank in the order PRE, FINE, SNAP.
   */
  private static Map<Kind, Negatives> redraw(
      DeviceBank device, NDArray rows, int extra, long seed) {
    DjlRuntime.seed((int) seed);
    Map<Kind, Negatives> draws = new EnumMap<>(Kind.class);
    for (Kind kind : Kind.values()) {
      draws.put(kind, device.sampleNegatives(kind, extra, rows));
    }
    return draws;
  }

  private static int batchRowsAmong(Negatives negatives) {
    Set<Long> batch = new HashSet<>();
    for (int r : ROWS) {
      batch.add(500 + 3L * r);
    }
    int hits = 0;
    for (long g : negatives.index().toLongArray()) {
      hits += batch.contains(g) ? 1 : 0;
    }
    return hits;
  }

  @Test
  void combinesTheTermsWithTheirWeights() {
    RepresentationBank bank = bank(false, 2);
    CapLossConfig config = CapLossConfig.defaults().withExtraExamples(6);
    SplittableRandom random = new SplittableRandom(8);
    try (NDManager manager = NDManager.newBaseManager();
        DeviceBank device = DeviceBank.upload(manager, bank)) {
      NDArray logits =
          manager
              .create(Gradients.random(random, ROWS.length * C, 1), new Shape(ROWS.length, C))
              .toType(DataType.FLOAT32, false);
      NDArray z = manager.create(unitRows(random, ROWS.length), new Shape(ROWS.length, H));
      NDArray rows = manager.create(java.util.Arrays.stream(ROWS).asLongStream().toArray());
      // a seed whose SNAP draw holds a batch row (3 rows of 12 with 4 in the batch: about 3 in 4
      // seeds), so the count of positives below checks that such a row is one more positive
      long seed = SEED;
      while (batchRowsAmong(redraw(device, rows, 6, seed).get(Kind.SNAP)) == 0) {
        seed++;
        assertTrue(seed < SEED + 100, "no seed draws a batch row among the SNAP extras");
      }
      Map<Kind, Negatives> draws = redraw(device, rows, 6, seed);
      DjlRuntime.seed((int) seed);
      CapLoss.Output out =
          new CapLoss(config).compute(logits, z, Targets.classes(batchLabels()), bank, ROWS);

      float ce = ClassificationLoss.crossEntropy(logits, batchLabels()).getFloat();
      NDArray teacher = manager.create(bank.teacherLogits(ROWS), new Shape(ROWS.length, C));
      float kd = Distillation.compute(logits, teacher, 2f).getFloat();
      ContrastiveLoss contrastive = new ContrastiveLoss(0.1f, 0.1f, 10f);
      float[] bankTerm = new float[3];
      for (Kind kind : Kind.values()) {
        Negatives negatives = draws.get(kind);
        assertEquals(
            kind == Kind.SNAP ? 3 * 2 : 6, negatives.columns(), "floor(6 / R) rows × R slices");
        assertTrue(negatives.valid() == null || negatives.valid().all().getBoolean(), "no padding");
        bankTerm[kind.ordinal()] =
            contrastive
                .compute(
                    z,
                    bank.globalIndices(ROWS),
                    batchLabels(),
                    bank.gather(manager, kind, ROWS),
                    negatives.vectors(),
                    negatives.index().toLongArray(),
                    toInts(negatives.labels().toLongArray()))
                .totalValue();
        assertTrue(bankTerm[kind.ordinal()] > 0);
      }
      LossTerms t = out.terms();
      assertEquals(ce, t.ce(), 1e-6);
      assertEquals(kd, t.kd(), 1e-6);
      assertEquals(bankTerm[Kind.PRE.ordinal()], t.prc(), 1e-6);
      assertEquals(bankTerm[Kind.SNAP.ordinal()], t.snc(), 1e-6);
      assertEquals(bankTerm[Kind.FINE.ordinal()], t.fic(), 1e-6);
      double expected = 0.1f * ce + 0.9f * kd + t.prc() + t.snc() + t.fic();
      assertEquals(expected, t.total(), 1e-5);
      assertEquals(t.total(), out.total().getFloat());
      double[] termValues = out.termValues().toType(DataType.FLOAT64, false).toDoubleArray();
      assertArrayEquals(
          new double[] {t.ce(), t.kd(), t.prc(), t.snc(), t.fic(), t.total()}, termValues);
      assertEquals(3, out.contrastive().size());
      // own R = 2 snapshots per anchor, plus both slices of any drawn row that is in the batch
      int drawnBatchColumns = batchRowsAmong(draws.get(Kind.SNAP));
      assertTrue(drawnBatchColumns >= 2);
      assertEquals(
          2 * ROWS.length + drawnBatchColumns, out.contrastive().get(Kind.SNAP).unsupPositives());

      // same seed, same draws; another seed draws other negatives
      DjlRuntime.seed((int) seed);
      assertEquals(
          t.total(),
          new CapLoss(config)
              .compute(logits, z, Targets.classes(batchLabels()), bank, ROWS)
              .terms()
              .total());
      DjlRuntime.seed((int) seed + 1);
      assertNotEquals(
          t.prc(),
          new CapLoss(config)
              .compute(logits, z, Targets.classes(batchLabels()), bank, ROWS)
              .terms()
              .prc());
    }
  }

  /**
   * The device entry point, with a resident bank and tensor targets, is the host adapter's loss.
   */
  @Test
  void deviceEntryPointMatchesTheHostAdapter() {
    RepresentationBank bank = bank(false, 3);
    CapLossConfig config = CapLossConfig.defaults().withExtraExamples(8);
    SplittableRandom random = new SplittableRandom(12);
    try (NDManager manager = NDManager.newBaseManager();
        DeviceBank device = DeviceBank.upload(manager, bank)) {
      NDArray logits =
          manager.create(Gradients.random(random, ROWS.length * C, 1), new Shape(ROWS.length, C));
      NDArray z =
          manager
              .create(unitRows(random, ROWS.length), new Shape(ROWS.length, H))
              .toType(DataType.FLOAT64, false);
      DjlRuntime.seed(5);
      LossTerms host =
          new CapLoss(config)
              .compute(logits, z, Targets.classes(batchLabels()), bank, ROWS)
              .terms();
      DjlRuntime.seed(5);
      CapLoss.Output out =
          new CapLoss(config)
              .compute(
                  logits,
                  z,
                  manager.create(java.util.Arrays.stream(batchLabels()).asLongStream().toArray()),
                  false,
                  device,
                  manager.create(java.util.Arrays.stream(ROWS).asLongStream().toArray()));
      assertEquals(DataType.FLOAT64, out.total().getDataType());
      LossTerms onDevice = out.terms();
      assertEquals(host.ce(), onDevice.ce(), 0.0);
      assertEquals(host.kd(), onDevice.kd(), 0.0);
      assertEquals(host.prc(), onDevice.prc(), 1e-12);
      assertEquals(host.snc(), onDevice.snc(), 1e-12);
      assertEquals(host.fic(), onDevice.fic(), 1e-12);
      assertEquals(host.total(), onDevice.total(), 1e-12);
      assertTrue(onDevice.snc() > 0 && onDevice.prc() > 0 && onDevice.fic() > 0);
    }
  }

  private static int[] toInts(long[] v) {
    int[] out = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = Math.toIntExact(v[i]);
    }
    return out;
  }

  @Test
  void baselinesAndMissingBanksDropTheirTerms() {
    RepresentationBank noSnapshots = bank(false, 0);
    SplittableRandom random = new SplittableRandom(9);
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray logits =
          manager.create(unitRows(random, ROWS.length), new Shape(ROWS.length, H)).get(":, :3");
      NDArray z = manager.create(unitRows(random, ROWS.length), new Shape(ROWS.length, H));
      Targets y = Targets.classes(batchLabels());
      // 4096 extras per bank cover this 12-row bank: every draw is the whole bank, in some order
      DjlRuntime.seed(1);
      LossTerms all =
          new CapLoss(CapLossConfig.defaults()).compute(logits, z, y, noSnapshots, ROWS).terms();
      assertEquals(0f, all.snc(), "SnC is inactive until the first snapshot");
      assertTrue(all.prc() > 0 && all.fic() > 0);

      LossTerms off =
          new CapLoss(CapLossConfig.defaults().withContrastive(false))
              .compute(logits, z, y, noSnapshots, ROWS)
              .terms();
      assertEquals(0f, off.prc() + off.snc() + off.fic());
      assertEquals(0.1f * off.ce() + 0.9f * off.kd(), off.total(), 1e-6);
      assertEquals(all.ce(), off.ce());

      LossTerms ficOnly =
          new CapLoss(CapLossConfig.defaults().withBanks(Set.of(Kind.FINE)))
              .compute(logits, z, y, noSnapshots, ROWS)
              .terms();
      assertEquals(0f, ficOnly.prc());
      assertEquals(all.fic(), ficOnly.fic(), 1e-6);
    }
  }

  @Test
  void regressionHasNoSupervisedTermAndVanishingKd() {
    RepresentationBank bank = bank(true, 1);
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray logits = manager.create(new float[] {1, 2, 3, 4}, new Shape(4, 1));
      NDArray z = manager.create(unitRows(new SplittableRandom(3), 4), new Shape(4, H));
      DjlRuntime.seed(4);
      CapLoss.Output out =
          new CapLoss(CapLossConfig.defaults())
              .compute(logits, z, Targets.regression(1.5f, 2f, 2f, 5f), bank, ROWS);
      assertEquals((0.25 + 0 + 1 + 1) / 4, out.terms().ce(), 1e-6);
      assertEquals(0f, out.terms().kd());
      for (ContrastiveLoss.Result r : out.contrastive().values()) {
        assertEquals(0f, r.supValue());
        assertEquals(0, r.supPositives());
        assertTrue(r.unsupValue() > 0);
      }
    }
  }

  /** Every wither keeps the other settings, the regression option included. */
  @Test
  void withersKeepEveryOtherSetting() {
    CapLossConfig on = CapLossConfig.defaults().withRegressionMse(true);
    for (CapLossConfig c :
        List.of(
            on.withTau(0.2f),
            on.withSupervisedWeight(3f),
            on.withBanks(Set.of(Kind.PRE)),
            on.withContrastive(false),
            on.withExtraExamples(7))) {
      assertTrue(c.regressionMse(), c::toString);
    }
    CapLossConfig all = on.withTau(0.2f).withSupervisedWeight(3f).withExtraExamples(7);
    assertEquals(
        new CapLossConfig.Builder().tau(0.2f).wS(3f).extraExamples(7).regressionMse(true).build(),
        all);
    assertEquals(all, all.toBuilder().build());
  }

  /** The option beyond the reference: regression distils by MSE toward the teacher's output. */
  @Test
  void regressionMseDistillsTowardTheTeacherOutput() {
    RepresentationBank bank = bank(true, 1);
    float[] teacher = bank.teacherLogits(ROWS);
    float[] student = {1, 2, 3, 4};
    double expected = 0;
    for (int i = 0; i < 4; i++) {
      expected += (student[i] - teacher[i]) * (student[i] - teacher[i]) / 4.0;
    }
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray logits = manager.create(student, new Shape(4, 1));
      NDArray z = manager.create(unitRows(new SplittableRandom(3), 4), new Shape(4, H));
      Targets targets = Targets.regression(1.5f, 2f, 2f, 5f);
      DjlRuntime.seed(4);
      LossTerms off =
          new CapLoss(CapLossConfig.defaults()).compute(logits, z, targets, bank, ROWS).terms();
      DjlRuntime.seed(4);
      LossTerms mse =
          new CapLoss(CapLossConfig.defaults().withRegressionMse(true))
              .compute(logits, z, targets, bank, ROWS)
              .terms();
      assertTrue(expected > 0.5, "the fixture's teacher differs from the student");
      assertEquals(0f, off.kd());
      assertEquals(expected, mse.kd(), 1e-5);
      assertEquals(off.ce(), mse.ce(), 1e-7);
      assertEquals(off.total() + 0.9 * expected, mse.total(), 1e-4);
    }
  }

  @Test
  void gradientReachesLogitsAndRepresentation() {
    RepresentationBank bank = bank(false, 1);
    SplittableRandom random = new SplittableRandom(10);
    CapLoss loss = new CapLoss(CapLossConfig.defaults().withExtraExamples(5));
    try (NDManager manager = NDManager.newBaseManager()) {
      double[] l0 = Gradients.random(random, ROWS.length * C, 1);
      double[] u0 = Gradients.random(random, ROWS.length * H, 1);
      NDArray logits = manager.create(l0, new Shape(ROWS.length, C));
      NDArray u = manager.create(u0, new Shape(ROWS.length, H));
      logits.setRequiresGradient(true);
      u.setRequiresGradient(true);
      CapLoss.Output out;
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        DjlRuntime.seed(3);
        out =
            loss.compute(
                logits, Representation.normalize(u), Targets.classes(batchLabels()), bank, ROWS);
        collector.backward(out.total());
      }
      assertEquals(DataType.FLOAT64, out.total().getDataType());
      NDArray teacher = manager.create(bank.teacherLogits(ROWS), new Shape(ROWS.length, C));
      double[] expected =
          Gradients.autograd(
              manager,
              l0,
              new Shape(ROWS.length, C),
              x ->
                  ClassificationLoss.crossEntropy(x, batchLabels())
                      .mul(0.1f)
                      .add(Distillation.compute(x, teacher, 2f).mul(0.9f)));
      assertArrayEquals(expected, logits.getGradient().toDoubleArray(), 1e-7);
      double zGrad = u.getGradient().abs().sum().getDouble();
      assertTrue(zGrad > 1e-4, "contrastive gradient reaches the representation: " + zGrad);
    }
  }

  @Test
  void inconsistentInputIsNamed() {
    RepresentationBank bank = bank(false, 0);
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray logits = manager.zeros(new Shape(4, C));
      NDArray z = manager.create(unitRows(new SplittableRandom(1), 4), new Shape(4, H));
      int[] wrong = batchLabels();
      wrong[2] = (wrong[2] + 1) % C;
      assertEquals(
          "batch row 2 has label "
              + wrong[2]
              + " but bank row 5 (global index 515) has label "
              + batchLabels()[2],
          assertThrows(
                  IllegalArgumentException.class,
                  () ->
                      new CapLoss(CapLossConfig.defaults())
                          .compute(logits, z, Targets.classes(wrong), bank, ROWS))
              .getMessage());
      RepresentationBank noTeacher =
          new RepresentationBank(new long[] {0, 1, 2, 3, 4, 5, 6, 7}, null, null, 0, H);
      assertEquals(
          "wKd is 0.9 but the bank holds no teacher logits",
          assertThrows(
                  IllegalStateException.class,
                  () ->
                      new CapLoss(CapLossConfig.defaults())
                          .compute(
                              manager.zeros(new Shape(4, 1)),
                              z,
                              Targets.regression(1, 2, 3, 4),
                              noTeacher,
                              ROWS))
              .getMessage());
      assertEquals(
          "targets has 3 entries but the batch has 4 rows",
          assertThrows(
                  IllegalArgumentException.class,
                  () ->
                      new CapLoss(CapLossConfig.defaults())
                          .compute(logits, z, Targets.classes(0, 1, 2), bank, ROWS))
              .getMessage());
    }
  }
}
