package io.capprune.core.loss;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ContrastiveLossTest {

  private static final float TAU = 0.1f;
  private static final ContrastiveLoss LOSS = new ContrastiveLoss(TAU, 0.1f, 10f);

  private static double lse(double... s) {
    double max = Double.NEGATIVE_INFINITY;
    for (double v : s) {
      max = Math.max(max, v);
    }
    double sum = 0;
    for (double v : s) {
      sum += Math.exp(v - max);
    }
    return max + Math.log(sum);
  }

  /**
   * B=2, R=1, H=2, one extra. Columns: z0·, G0, z1·, G1, X (· = detached copy). z0=(1,0) z1=(.6,.8)
   * G0=(.8,.6) G1=(0,1) X=(−.6,.8); global index 10, 11, X 7; labels 1, 0, X 1.
   */
  @Test
  void smallCaseWorkedOutByHand() {
    // anchor 0 scores/τ: self masked, G0 8, z1 6, G1 0, X −6
    double lse0 = lse(8, 6, 0, -6);
    // anchor 1: z0 6, G0 9.6, self masked, G1 8, X 2.8
    double lse1 = lse(6, 9.6, 8, 2.8);
    // unsupervised: one positive each (own bank slice), divided by Σ|P| = 2
    double unsup = -0.1 * ((8 - lse0) + (8 - lse1)) / 2;
    // supervised: anchor 0 (label 1) has G0 and X, anchor 1 (label 0) has G1 (its own copy is
    // excluded); per-anchor means summed and divided by Σ|P| = 3, not by B
    double sup = -10 * (((8 - lse0) + (-6 - lse0)) / 2 + (8 - lse1)) / 3;
    for (DataType type : new DataType[] {DataType.FLOAT64, DataType.FLOAT32}) {
      try (NDManager manager = NDManager.newBaseManager()) {
        NDArray z =
            manager.create(new double[] {1, 0, 0.6, 0.8}, new Shape(2, 2)).toType(type, false);
        NDArray g = manager.create(new float[] {0.8f, 0.6f, 0, 1}, new Shape(2, 1, 2));
        NDArray x = manager.create(new float[] {-0.6f, 0.8f}, new Shape(1, 2));
        ContrastiveLoss.Result r =
            LOSS.compute(
                z, new long[] {10, 11}, new int[] {1, 0}, g, x, new long[] {7}, new int[] {1});
        double tol = type == DataType.FLOAT64 ? 1e-6 : 1e-5;
        assertEquals(unsup, r.unsupValue(), tol * Math.abs(unsup));
        assertEquals(sup, r.supValue(), tol * Math.abs(sup));
        assertEquals(type, r.unsup().getDataType());
        assertEquals(2, r.unsupPositives());
        assertEquals(3, r.supPositives());
        assertEquals(5, r.columns());
        assertEquals(unsup + sup, r.total().toType(DataType.FLOAT64, false).getDouble(), 1e-5);
      }
    }
  }

  /** An extra that happens to be a batch row (the reference allows it) is one more positive. */
  @Test
  void extraCopyOfABatchRowIsAnUnsupervisedPositive() {
    double lse0 = lse(8, 6, 0, -6);
    double lse1 = lse(6, 9.6, 8, 2.8);
    double unsup = -0.1 * (((8 - lse0) + (-6 - lse0)) / 2 + (8 - lse1)) / 3;
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray z = manager.create(new double[] {1, 0, 0.6, 0.8}, new Shape(2, 2));
      NDArray g = manager.create(new float[] {0.8f, 0.6f, 0, 1}, new Shape(2, 1, 2));
      NDArray x = manager.create(new float[] {-0.6f, 0.8f}, new Shape(1, 2));
      ContrastiveLoss.Result r =
          LOSS.compute(z, new long[] {10, 11}, null, g, x, new long[] {10}, null);
      assertEquals(unsup, r.unsupValue(), 1e-6 * Math.abs(unsup));
      assertEquals(3, r.unsupPositives());
      assertEquals(0f, r.supValue(), "no labels (regression): no supervised term");
      assertEquals(0, r.supPositives());
    }
  }

  /** Test-side log-probabilities in doubles, self column excluded from the normaliser. */
  private static double[][] logP(double[][] z, double[][] candidates, int group) {
    int b = z.length;
    int m = candidates.length;
    double[][] out = new double[b][m];
    for (int i = 0; i < b; i++) {
      double[] s = new double[m - 1];
      int k = 0;
      double[] all = new double[m];
      for (int j = 0; j < m; j++) {
        all[j] = dot(z[i], candidates[j]) / TAU;
        if (j != i * group) {
          s[k++] = all[j];
        }
      }
      double norm = lse(s);
      for (int j = 0; j < m; j++) {
        out[i][j] = all[j] - norm;
      }
    }
    return out;
  }

  private static double dot(double[] a, double[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += a[i] * b[i];
    }
    return s;
  }

  private static double[][] unitRows(SplittableRandom random, int rows, int h) {
    double[][] v = new double[rows][h];
    for (double[] row : v) {
      double n = 0;
      for (int i = 0; i < h; i++) {
        row[i] = random.nextGaussian();
        n += row[i] * row[i];
      }
      for (int i = 0; i < h; i++) {
        row[i] /= Math.sqrt(n);
      }
    }
    return v;
  }

  private static double[] flat(double[][] v) {
    int h = v[0].length;
    double[] out = new double[v.length * h];
    for (int i = 0; i < v.length; i++) {
      System.arraycopy(v[i], 0, out, i * h, h);
    }
    return out;
  }

  /**
   * A batch, its bank slices and extras as plain arrays plus the candidate matrix the reference
   * builds.
   */
  private record Case(
      double[][] z,
      double[][] bank,
      double[][] extras,
      long[] index,
      int[] labels,
      long[] extraIndex,
      int[] extraLabels,
      int r) {

    static Case random(SplittableRandom random, int b, int r, int e, int h, int classes) {
      long[] index = new long[b];
      int[] labels = new int[b];
      for (int i = 0; i < b; i++) {
        index[i] = 1000 + i;
        labels[i] = random.nextInt(classes);
      }
      long[] extraIndex = new long[e * r];
      int[] extraLabels = new int[e * r];
      for (int i = 0; i < e; i++) {
        int label = random.nextInt(classes);
        for (int s = 0; s < r; s++) {
          extraIndex[i * r + s] = i; // distinct from the batch
          extraLabels[i * r + s] = label;
        }
      }
      return new Case(
          unitRows(random, b, h),
          unitRows(random, b * r, h),
          unitRows(random, e * r, h),
          index,
          labels,
          extraIndex,
          extraLabels,
          r);
    }

    double[][] candidates() {
      int b = z.length;
      double[][] c = new double[b * (r + 1) + extras.length][];
      for (int i = 0; i < b; i++) {
        c[i * (r + 1)] = z[i];
        for (int s = 0; s < r; s++) {
          c[i * (r + 1) + 1 + s] = bank[i * r + s];
        }
      }
      System.arraycopy(extras, 0, c, b * (r + 1), extras.length);
      return c;
    }

    ContrastiveLoss.Result run(
        NDManager manager, ContrastiveLoss loss, NDArray zArray, boolean withLabels) {
      int h = z[0].length;
      return loss.compute(
          zArray,
          index,
          withLabels ? labels : null,
          manager.create(flat(bank), new Shape(z.length, r, h)),
          manager.create(flat(extras), new Shape(extras.length, h)),
          extraIndex,
          withLabels ? extraLabels : null);
    }
  }

  @Test
  void preBankUnsupervisedIsOrdinaryInfoNceMean() {
    Case c = Case.random(new SplittableRandom(1), 4, 1, 6, 8, 3);
    double[][] lp = logP(c.z(), c.candidates(), 2);
    double infoNce = 0;
    for (int b = 0; b < 4; b++) {
      infoNce -= lp[b][2 * b + 1];
    }
    infoNce /= 4;
    try (NDManager manager = NDManager.newBaseManager()) {
      ContrastiveLoss.Result r =
          c.run(manager, LOSS, manager.create(flat(c.z()), new Shape(4, 8)), true);
      assertEquals(0.1 * infoNce, r.unsupValue(), 1e-6 * infoNce);
      assertEquals(4, r.unsupPositives());
    }
  }

  @Test
  void snapshotUnsupervisedIsMeanOverPairsDividedByR() {
    int r = 3;
    Case c = Case.random(new SplittableRandom(2), 4, r, 5, 8, 3);
    double[][] lp = logP(c.z(), c.candidates(), r + 1);
    double pairMean = 0;
    for (int b = 0; b < 4; b++) {
      for (int s = 0; s < r; s++) {
        pairMean -= lp[b][b * (r + 1) + 1 + s];
      }
    }
    pairMean /= 4 * r;
    try (NDManager manager = NDManager.newBaseManager()) {
      ContrastiveLoss.Result res =
          c.run(manager, LOSS, manager.create(flat(c.z()), new Shape(4, 8)), true);
      assertEquals(0.1 * pairMean / r, res.unsupValue(), 1e-6 * pairMean);
      assertEquals(4 * r, res.unsupPositives());
    }
  }

  /**
   * docs/cap-math.md §1.5's closed form: ∂L/∂s_bj = a_b(|P_b| p_bj − 1[j∈P_b]), a_b = w/(|P_b|
   * Σ|P|).
   */
  @Test
  void autogradMatchesClosedFormAndIgnoresTheDetachedCopies() {
    int b = 5;
    int r = 2;
    int h = 6;
    Case c = Case.random(new SplittableRandom(3), b, r, 7, h, 2);
    double[][] cand = c.candidates();
    int m = cand.length;
    int group = r + 1;
    double[][] lp = logP(c.z(), cand, group);
    long[] colIndex = new long[m];
    int[] colLabel = new int[m];
    for (int i = 0; i < b; i++) {
      for (int s = 0; s < group; s++) {
        colIndex[i * group + s] = c.index()[i];
        colLabel[i * group + s] = c.labels()[i];
      }
    }
    for (int j = 0; j < c.extras().length; j++) {
      colIndex[b * group + j] = c.extraIndex()[j];
      colLabel[b * group + j] = c.extraLabels()[j];
    }
    double[] expected = new double[b * h];
    for (int variant = 0; variant < 2; variant++) {
      double w = variant == 0 ? 0.1f : 10f; // the float weights the loss holds
      boolean[][] pos = new boolean[b][m];
      int[] count = new int[b];
      int total = 0;
      for (int i = 0; i < b; i++) {
        for (int j = 0; j < m; j++) {
          pos[i][j] =
              j != i * group
                  && (variant == 0 ? colIndex[j] == c.index()[i] : colLabel[j] == c.labels()[i]);
          count[i] += pos[i][j] ? 1 : 0;
        }
        total += count[i];
      }
      for (int i = 0; i < b; i++) {
        double a = w / ((double) count[i] * total);
        for (int j = 0; j < m; j++) {
          double p = j == i * group ? 0 : Math.exp(lp[i][j]);
          double ds = a * (count[i] * p - (pos[i][j] ? 1 : 0));
          for (int k = 0; k < h; k++) {
            expected[i * h + k] += ds * cand[j][k] / TAU;
          }
        }
      }
    }
    try (NDManager manager = NDManager.newBaseManager()) {
      double[] got =
          Gradients.autograd(
              manager, flat(c.z()), new Shape(b, h), z -> c.run(manager, LOSS, z, true).total());
      assertArrayEquals(expected, got, 1e-9);
    }
  }

  /** Three banks, both terms, through the normalisation, in float64 against central differences. */
  @Test
  void threeBankGradientMatchesCentralDifferences() {
    SplittableRandom random = new SplittableRandom(4);
    int b = 3;
    int h = 5;
    Case pre = Case.random(random, b, 1, 4, h, 2);
    Case snap = Case.random(random, b, 3, 2, h, 2);
    Case fine = Case.random(random, b, 1, 4, h, 2);
    // the three cases share the batch: same indices and labels
    Case snapB =
        new Case(
            pre.z(),
            snap.bank(),
            snap.extras(),
            pre.index(),
            pre.labels(),
            snap.extraIndex(),
            snap.extraLabels(),
            3);
    Case fineB =
        new Case(
            pre.z(),
            fine.bank(),
            fine.extras(),
            pre.index(),
            pre.labels(),
            fine.extraIndex(),
            fine.extraLabels(),
            1);
    double[] u0 = Gradients.random(random, b * h, 2);
    Shape shape = new Shape(b, h);
    try (NDManager manager = NDManager.newBaseManager()) {
      // the in-batch candidates are the detached anchors at u0 and stay there while u moves
      NDArray copies = Representation.normalize(manager.create(u0, shape)).stopGradient();
      java.util.function.Function<NDArray, NDArray> loss =
          u -> {
            NDArray z = Representation.normalize(u);
            NDArray sum = null;
            for (Case c : new Case[] {pre, snapB, fineB}) {
              NDArray t =
                  LOSS.compute(
                          z,
                          copies,
                          c.index(),
                          c.labels(),
                          manager.create(flat(c.bank()), new Shape(b, c.r(), h)),
                          manager.create(flat(c.extras()), new Shape(c.extras().length, h)),
                          c.extraIndex(),
                          c.extraLabels())
                      .total();
              sum = sum == null ? t : sum.add(t);
            }
            return sum;
          };
      double[] viaCopies = Gradients.check(manager, u0, shape, loss, 1e-7);
      // the public entry point detaches z itself and must give the same gradient
      double[] viaPublic =
          Gradients.autograd(
              manager,
              u0,
              shape,
              u -> {
                NDArray z = Representation.normalize(u);
                NDArray sum = null;
                for (Case c : new Case[] {pre, snapB, fineB}) {
                  NDArray t = c.run(manager, LOSS, z, true).total();
                  sum = sum == null ? t : sum.add(t);
                }
                return sum;
              });
      assertArrayEquals(viaCopies, viaPublic, 1e-12);
    }
  }

  @Test
  void candidatesGetNoGradient() {
    Case c = Case.random(new SplittableRandom(5), 3, 2, 4, 4, 2);
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray z = manager.create(flat(c.z()), new Shape(3, 4));
      NDArray bank = manager.create(flat(c.bank()), new Shape(3, 2, 4));
      NDArray extras = manager.create(flat(c.extras()), new Shape(8, 4));
      z.setRequiresGradient(true);
      bank.setRequiresGradient(true);
      extras.setRequiresGradient(true);
      try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        collector.backward(
            LOSS.compute(z, c.index(), c.labels(), bank, extras, c.extraIndex(), c.extraLabels())
                .total());
      }
      double zNorm = z.getGradient().abs().sum().getDouble();
      assertTrue(zNorm > 1e-3, "the anchor receives a gradient: " + zNorm);
      assertArrayEquals(
          new double[24], bank.getGradient().toType(DataType.FLOAT64, false).toDoubleArray(), 0.0);
      assertArrayEquals(
          new double[32],
          extras.getGradient().toType(DataType.FLOAT64, false).toDoubleArray(),
          0.0);
    }
  }

  /**
   * Padding columns (valid = false), as a shard smaller than the draw produces, take no part: the
   * loss, both positive counts and the gradient equal those without them, although each padding
   * column here is a copy of an anchor with its global index and label, which would otherwise be
   * the strongest positive of all.
   */
  @Test
  void paddingColumnsTakeNoPart() {
    int b = 4;
    int r = 2;
    int h = 6;
    Case c = Case.random(new SplittableRandom(6), b, r, 5, h, 2);
    double[][] extras = c.extras();
    int e = extras.length; // 5 rows × 2 slices
    // padded: rows 0..4 of the real extras with padding rows (2 slices each) before, between, after
    int[] layout = {-1, 0, 1, -2, 2, 3, -3, -4, 4, -1};
    int columns = layout.length * r;
    double[] vectors = new double[columns * h];
    long[] index = new long[columns];
    long[] labels = new long[columns];
    boolean[] valid = new boolean[columns];
    for (int k = 0; k < layout.length; k++) {
      for (int s = 0; s < r; s++) {
        int col = k * r + s;
        if (layout[k] >= 0) {
          int from = layout[k] * r + s;
          System.arraycopy(extras[from], 0, vectors, col * h, h);
          index[col] = c.extraIndex()[from];
          labels[col] = c.extraLabels()[from];
          valid[col] = true;
        } else {
          int anchor = -layout[k] - 1;
          System.arraycopy(c.z()[anchor], 0, vectors, col * h, h);
          index[col] = c.index()[anchor];
          labels[col] = c.labels()[anchor];
        }
      }
    }
    long[] realLabels = new long[e];
    for (int j = 0; j < e; j++) {
      realLabels[j] = c.extraLabels()[j];
    }
    long[] batchLabels = java.util.Arrays.stream(c.labels()).asLongStream().toArray();
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray bank = manager.create(flat(c.bank()), new Shape(b, r, h));
      java.util.function.BiFunction<NDArray, Boolean, ContrastiveLoss.Result> run =
          (z, padded) -> {
            io.capprune.core.bank.Negatives negatives =
                padded
                    ? new io.capprune.core.bank.Negatives(
                        manager.create(vectors, new Shape(columns, h)),
                        manager.create(index),
                        manager.create(labels),
                        manager.create(valid))
                    : new io.capprune.core.bank.Negatives(
                        manager.create(flat(extras), new Shape(e, h)),
                        manager.create(c.extraIndex()),
                        manager.create(realLabels),
                        null);
            return LOSS.compute(
                z,
                z.stopGradient(),
                manager.create(c.index()),
                manager.create(batchLabels),
                bank,
                negatives);
          };
      NDArray z = manager.create(flat(c.z()), new Shape(b, h));
      ContrastiveLoss.Result without = run.apply(z, false);
      ContrastiveLoss.Result with = run.apply(z, true);
      assertEquals(b * (r + 1) + e, without.columns());
      assertEquals(b * (r + 1) + columns, with.columns(), "padding columns are counted in M");
      assertEquals(without.unsupPositives(), with.unsupPositives());
      assertEquals(without.supPositives(), with.supPositives());
      assertTrue(without.supPositives() > without.unsupPositives());
      assertEquals(without.unsupValue(), with.unsupValue(), 1e-12 * Math.abs(without.unsupValue()));
      assertEquals(without.supValue(), with.supValue(), 1e-12 * Math.abs(without.supValue()));
      // the same padding columns marked valid would change the loss: the mask is what removes them
      java.util.Arrays.fill(valid, true);
      ContrastiveLoss.Result unmasked = run.apply(z, true);
      assertTrue(unmasked.unsupPositives() > without.unsupPositives());
      assertTrue(
          Math.abs(unmasked.totalValue() - without.totalValue())
              > 1e-3 * Math.abs(without.totalValue()));
      for (int k = 0; k < layout.length; k++) {
        for (int s = 0; s < r; s++) {
          valid[k * r + s] = layout[k] >= 0;
        }
      }
      double[] gradWithout =
          Gradients.autograd(
              manager, flat(c.z()), new Shape(b, h), x -> run.apply(x, false).total());
      double[] gradWith =
          Gradients.autograd(
              manager, flat(c.z()), new Shape(b, h), x -> run.apply(x, true).total());
      assertArrayEquals(gradWithout, gradWith, 1e-12);
      assertTrue(java.util.Arrays.stream(gradWith).map(Math::abs).sum() > 1e-3);
      // all columns valid, given explicitly, is the same as no validity at all
      ContrastiveLoss.Result allValid =
          LOSS.compute(
              z,
              z.stopGradient(),
              manager.create(c.index()),
              manager.create(batchLabels),
              bank,
              new io.capprune.core.bank.Negatives(
                  manager.create(flat(extras), new Shape(e, h)), manager.create(c.extraIndex()),
                  manager.create(realLabels), manager.ones(new Shape(e), DataType.BOOLEAN)));
      assertEquals(without.totalValue(), allValid.totalValue(), 0.0);
    }
  }

  @Test
  void badInputIsNamed() {
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray z = manager.zeros(new Shape(2, 4));
      NDArray bank = manager.zeros(new Shape(2, 1, 4));
      NDArray extras = manager.zeros(new Shape(3, 4));
      assertEquals(
          "batchIndex has 3 entries but z has 2 rows",
          assertThrows(
                  IllegalArgumentException.class,
                  () -> LOSS.compute(z, new long[3], null, bank, null, null, null))
              .getMessage());
      assertEquals(
          "bankSlices must be [B, R, H] = [2, R>=1, 4], got (2, 1, 3)",
          assertThrows(
                  IllegalArgumentException.class,
                  () ->
                      LOSS.compute(
                          z,
                          new long[2],
                          null,
                          manager.zeros(new Shape(2, 1, 3)),
                          null,
                          null,
                          null))
              .getMessage());
      assertEquals(
          "extraIndex has 2 entries but extras has 3 rows",
          assertThrows(
                  IllegalArgumentException.class,
                  () -> LOSS.compute(z, new long[2], null, bank, extras, new long[2], null))
              .getMessage());
      assertEquals(
          "extraLabels has no entries but extras has 3 rows; the supervised term needs every candidate's label",
          assertThrows(
                  IllegalArgumentException.class,
                  () ->
                      LOSS.compute(
                          z, new long[] {1, 2}, new int[2], bank, extras, new long[3], null))
              .getMessage());
      assertEquals(
          "tau must be > 0, got 0.0",
          assertThrows(IllegalArgumentException.class, () -> new ContrastiveLoss(0f, 1f, 1f))
              .getMessage());
    }
  }
}
