package io.capprune.core.bank;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.tensor.HalfPrecision;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class RepresentationBankTest {

  private static final int N = 5;
  private static final int H = 3;

  /** Row i, slice s, component h holds (100·s + 10·i + h) / 1024: exact in half precision. */
  private static float[] slice(int s) {
    float[] v = new float[N * H];
    for (int i = 0; i < N; i++) {
      for (int h = 0; h < H; h++) {
        v[i * H + h] = (100 * s + 10 * i + h) / 1024f;
      }
    }
    return v;
  }

  private static RepresentationBank bank() {
    RepresentationBank bank =
        new RepresentationBank(
            new long[] {40, 11, 7, 93, 5},
            new int[] {0, 1, 1, 0, 2},
            new float[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
            2,
            H);
    bank.addSlice(Kind.PRE, slice(0));
    bank.addSlice(Kind.FINE, slice(1));
    bank.addSlice(Kind.SNAP, slice(2));
    bank.addSlice(Kind.SNAP, slice(3));
    return bank;
  }

  private static NDArray rows(NDManager manager, int... rows) {
    return manager.create(Arrays.stream(rows).asLongStream().toArray());
  }

  /** One device draw read back to the heap, columns in the draw's order. */
  private record Draw(float[] vectors, long[] index, long[] labels, boolean[] valid, int columns) {

    static Draw of(Negatives n) {
      int e = n.columns();
      boolean[] valid = new boolean[e];
      if (n.valid() == null) {
        Arrays.fill(valid, true);
      } else {
        assertEquals(DataType.BOOLEAN, n.valid().getDataType());
        assertEquals(new Shape(e), n.valid().getShape());
        valid = n.valid().toBooleanArray();
      }
      assertEquals(DataType.INT64, n.index().getDataType());
      assertEquals(2, n.vectors().getShape().dimension());
      assertEquals(e, n.vectors().getShape().get(0));
      return new Draw(
          n.vectors().toType(DataType.FLOAT32, false).toFloatArray(),
          n.index().toLongArray(),
          n.labels() == null ? null : n.labels().toLongArray(),
          valid,
          e);
    }

    /** The local row of each group of r columns (one drawn row each), via the global index. */
    int[] rows(RepresentationBank bank, int r) {
      Map<Long, Integer> local = new HashMap<>();
      for (int i = 0; i < bank.size(); i++) {
        local.put(bank.globalIndex(i), i);
      }
      assertEquals(0, columns % r, "whole rows of " + r + " slices");
      int[] out = new int[columns / r];
      for (int i = 0; i < out.length; i++) {
        for (int s = 0; s < r; s++) {
          assertEquals(index[i * r], index[i * r + s], "the R slices of a row sit together");
          assertEquals(
              valid[i * r], valid[i * r + s], "a row is padding in all its slices or none");
        }
        out[i] = local.get(index[i * r]);
      }
      return out;
    }

    int validCount() {
      int c = 0;
      for (boolean v : valid) {
        c += v ? 1 : 0;
      }
      return c;
    }
  }

  @Test
  void gathersRowsSlicesInReferenceOrder() {
    RepresentationBank bank = bank();
    assertEquals(1, bank.slices(Kind.PRE));
    assertEquals(2, bank.slices(Kind.SNAP));
    float[] got = bank.gather(Kind.SNAP, new int[] {3, 0});
    float[] expected = {
      (200 + 30) / 1024f, (201 + 30) / 1024f, (202 + 30) / 1024f, // row 3, snapshot 0
      (300 + 30) / 1024f, (301 + 30) / 1024f, (302 + 30) / 1024f, // row 3, snapshot 1
      200 / 1024f, 201 / 1024f, 202 / 1024f,
      300 / 1024f, 301 / 1024f, 302 / 1024f
    };
    assertArrayEquals(expected, got);
    assertArrayEquals(
        new float[] {110 / 1024f, 111 / 1024f, 112 / 1024f}, bank.gather(Kind.FINE, new int[] {1}));
    assertArrayEquals(new long[] {93, 40}, bank.globalIndices(new int[] {3, 0}));
    assertArrayEquals(new int[] {0, 2}, bank.labels(new int[] {3, 4}));
    assertArrayEquals(new float[] {8, 9, 2, 3}, bank.teacherLogits(new int[] {4, 1}));
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray g = bank.gather(manager, Kind.SNAP, new int[] {3, 0});
      assertEquals(new Shape(2, 2, H), g.getShape());
      assertArrayEquals(expected, g.toFloatArray());
    }
  }

  /**
   * The device copy holds the same rows: same slices in the same order, indices, labels, logits.
   */
  @Test
  void deviceBankGathersWhatTheHostBankHolds() {
    RepresentationBank bank = bank();
    try (NDManager manager = NDManager.newBaseManager();
        DeviceBank device = DeviceBank.upload(manager, bank)) {
      assertTrue(device.holds(bank));
      assertTrue(device.hasLabels() && device.hasTeacherLogits());
      assertEquals(2, device.numClasses());
      int[] r = {3, 0, 4};
      NDArray rows = rows(manager, r);
      for (Kind kind : Kind.values()) {
        NDArray g = device.gather(kind, rows);
        assertEquals(new Shape(3, bank.slices(kind), H), g.getShape(), kind.toString());
        assertEquals(DataType.FLOAT16, g.getDataType(), "vectors stay in half precision");
        assertArrayEquals(
            bank.gather(kind, r),
            g.toType(DataType.FLOAT32, false).toFloatArray(),
            kind.toString());
        assertEquals(bank.slices(kind), device.slices(kind));
      }
      assertArrayEquals(bank.globalIndices(r), device.globalIndex(rows).toLongArray());
      assertArrayEquals(new long[] {0, 0, 2}, device.labels(rows).toLongArray());
      NDArray t = device.teacherLogits(rows);
      assertEquals(new Shape(3, 2), t.getShape());
      assertEquals(DataType.FLOAT32, t.getDataType());
      assertArrayEquals(bank.teacherLogits(r), t.toFloatArray());
      // a new SnC slice makes the device copy stale; a copy of the bank is another bank
      RepresentationBank next = bank.copy();
      assertFalse(device.holds(next));
      bank.addSlice(Kind.SNAP, slice(4));
      assertFalse(device.holds(bank), "the SNAP bank grew after the upload");
    }
    RepresentationBank regression = new RepresentationBank(new long[] {3, 4}, null, null, 0, 2);
    regression.addSlice(Kind.PRE, new float[] {0.5f, 0, 0, 0.5f});
    try (NDManager manager = NDManager.newBaseManager();
        DeviceBank device = DeviceBank.upload(manager, regression)) {
      assertFalse(device.hasLabels());
      assertNull(device.labels(rows(manager, 1, 0)));
      assertEquals(
          "this bank holds no teacher logits",
          assertThrows(IllegalStateException.class, () -> device.teacherLogits(rows(manager, 0)))
              .getMessage());
      assertEquals(
          "FINE bank is empty",
          assertThrows(
                  IllegalStateException.class, () -> device.gather(Kind.FINE, rows(manager, 0)))
              .getMessage());
      DjlRuntime.seed(1);
      Draw d = Draw.of(device.sampleNegatives(Kind.PRE, 2, rows(manager, 0)));
      assertNull(d.labels(), "regression: the extras carry no labels");
      assertEquals(2, d.columns());
    }
  }

  /**
   * A worker keeps its DeviceBank across the steps of an epoch and runs each step in a manager it
   * closes afterwards: what a step gathers or draws must die with that manager, or every step
   * leaves its rows, logits and extra negatives (E·R·H halves per bank) on the device until the
   * bank is replaced.
   */
  @Test
  void aResidentDeviceBankKeepsNothingOfAStep() {
    RepresentationBank bank = bank();
    try (NDManager base = NDManager.newBaseManager();
        DeviceBank device = DeviceBank.upload(base, bank)) {
      int resident = base.getManagedArrays().size();
      for (int step = 0; step < 3; step++) {
        try (NDManager s = base.newSubManager()) {
          NDArray rows = rows(s, 3, 0);
          DjlRuntime.seed(step);
          device.gather(Kind.SNAP, rows);
          device.globalIndex(rows);
          device.labels(rows);
          device.teacherLogits(rows);
          device.sampleNegatives(Kind.PRE, 3, rows);
          device.sampleNegatives(Kind.SNAP, 4, rows);
        }
        assertEquals(
            resident,
            base.getManagedArrays().size(),
            "arrays a closed step left in the resident bank's manager, step " + step);
      }
    }
  }

  @Test
  void storesHalfPrecision() {
    RepresentationBank bank = new RepresentationBank(new long[] {0}, null, null, 0, 2);
    bank.addSlice(Kind.PRE, new float[] {1f / 3, -0.7f});
    float[] got = bank.gather(Kind.PRE, new int[] {0});
    assertEquals(0.333251953125f, got[0]);
    assertEquals(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(-0.7f)), got[1]);
    assertTrue(Math.abs(got[1] + 0.7f) < 0x1p-12);
    assertEquals(2 * 2 + 8, bank.memoryBytes(), "two halves plus one long index");
    assertNull(bank.labels(new int[] {0}));
    assertFalse(bank.hasTeacherLogits());
  }

  @Test
  void badInputIsNamed() {
    RepresentationBank bank = bank();
    assertEquals(
        "PRE slice already present; only SNAP grows",
        assertThrows(IllegalStateException.class, () -> bank.addSlice(Kind.PRE, slice(0)))
            .getMessage());
    assertEquals(
        "SNAP slice 2 has 14 values, expected n × H = 5 × 3 = 15",
        assertThrows(IllegalArgumentException.class, () -> bank.addSlice(Kind.SNAP, new float[14]))
            .getMessage());
    float[] withNaN = slice(4);
    withNaN[7] = Float.NaN;
    assertEquals(
        "SNAP slice 2: row 2 (global index 7) component 1 is NaN, not a finite half-precision value",
        assertThrows(IllegalArgumentException.class, () -> bank.addSlice(Kind.SNAP, withNaN))
            .getMessage());
    assertEquals(2, bank.slices(Kind.SNAP), "a rejected slice is not half-added");
    assertEquals(
        "local row 5 outside bank of 5 rows",
        assertThrows(IndexOutOfBoundsException.class, () -> bank.gather(Kind.PRE, new int[] {0, 5}))
            .getMessage());
    assertEquals(
        "global index 7 appears twice; each training row must be in one bank row",
        assertThrows(
                IllegalArgumentException.class,
                () -> new RepresentationBank(new long[] {7, 1, 7}, null, null, 0, 4))
            .getMessage());
    assertEquals(
        "teacherLogits has 5 values but n × numClasses = 3 × 2 = 6",
        assertThrows(
                IllegalArgumentException.class,
                () -> new RepresentationBank(new long[] {0, 1, 2}, null, new float[5], 2, 4))
            .getMessage());
    assertEquals(
        "negative label -1 at row 1 (global index 8)",
        assertThrows(
                IllegalArgumentException.class,
                () -> new RepresentationBank(new long[] {3, 8}, new int[] {0, -1}, null, 0, 4))
            .getMessage());
    assertEquals(
        "trainingSetSize 4 is smaller than this shard's 5 rows",
        assertThrows(
                IllegalArgumentException.class,
                () -> new RepresentationBank(new long[] {0, 1, 2, 3, 4}, null, null, 0, 1, 4))
            .getMessage());
    RepresentationBank empty = new RepresentationBank(new long[] {0}, null, null, 0, 1);
    try (NDManager manager = NDManager.newBaseManager();
        DeviceBank device = DeviceBank.upload(manager, empty)) {
      NDArray batch = rows(manager, 0);
      assertEquals(
          "SNAP bank is empty: no negatives to draw",
          assertThrows(
                  IllegalStateException.class, () -> device.sampleNegatives(Kind.SNAP, 8, batch))
              .getMessage());
      empty.addSlice(Kind.PRE, new float[] {1});
      try (DeviceBank withPre = DeviceBank.upload(manager, empty)) {
        assertEquals(
            "extraExamples must be >= 0, got -1",
            assertThrows(
                    IllegalArgumentException.class,
                    () -> withPre.sampleNegatives(Kind.PRE, -1, batch))
                .getMessage());
      }
    }
  }

  @Test
  void negativesTakeAllSlicesOfDistinctRows() {
    RepresentationBank bank = bank();
    try (NDManager manager = NDManager.newBaseManager();
        DeviceBank device = DeviceBank.upload(manager, bank)) {
      NDArray batch = rows(manager, 1, 3);
      for (int seed = 0; seed < 20; seed++) {
        DjlRuntime.seed(seed);
        // floor(5 / 2) = 2 rows of the SNAP bank, each with its 2 slices
        Negatives negatives = device.sampleNegatives(Kind.SNAP, 5, batch);
        assertEquals(4, negatives.columns());
        assertEquals(new Shape(4, H), negatives.vectors().getShape());
        Draw d = Draw.of(negatives);
        int[] r = d.rows(bank, 2);
        assertEquals(2, r.length);
        assertTrue(r[0] != r[1], "distinct rows: " + Arrays.toString(r));
        assertEquals(4, d.validCount(), "the shard holds enough rows: no padding");
        assertArrayEquals(
            bank.gather(Kind.SNAP, r), d.vectors(), "row by row, its R slices together");
        int[] y = bank.labels(r);
        assertArrayEquals(new long[] {y[0], y[0], y[1], y[1]}, d.labels());
      }
      // asking for more than the shard holds yields every row once
      DjlRuntime.seed(9);
      Draw all = Draw.of(device.sampleNegatives(Kind.PRE, 4096, batch));
      int[] r = all.rows(bank, 1).clone();
      assertArrayEquals(bank.gather(Kind.PRE, r), all.vectors());
      Arrays.sort(r);
      assertArrayEquals(new int[] {0, 1, 2, 3, 4}, r);
      assertEquals(5, all.validCount());
      assertNull(device.sampleNegatives(Kind.SNAP, 1, batch), "floor(1 / 2) = 0 rows: no extras");
      assertNull(device.sampleNegatives(Kind.PRE, 0, batch));
    }
  }

  @Test
  void drawsFollowTheEngineSeed() {
    RepresentationBank shard = uniformShard(1000, 10_000);
    try (NDManager manager = NDManager.newBaseManager();
        DeviceBank device = DeviceBank.upload(manager, shard)) {
      NDArray batch = rows(manager, 5, 17, 400);
      DjlRuntime.seed(42);
      long[] first = device.sampleNegatives(Kind.PRE, 50, batch).index().toLongArray();
      long[] second = device.sampleNegatives(Kind.PRE, 50, batch).index().toLongArray();
      DjlRuntime.seed(42);
      long[] again = device.sampleNegatives(Kind.PRE, 50, batch).index().toLongArray();
      DjlRuntime.seed(43);
      long[] other = device.sampleNegatives(Kind.PRE, 50, batch).index().toLongArray();
      assertArrayEquals(first, again, "same engine seed, same draw");
      assertFalse(Arrays.equals(first, second), "the generator moves on between draws");
      assertFalse(Arrays.equals(first, other), "another seed, another draw");
      assertEquals(50, Arrays.stream(first).distinct().count());
    }
  }

  /** A shard of n rows (global index 7·i, no labels) of a training set of N, one zero PRE slice. */
  private static RepresentationBank uniformShard(int n, long trainingSet) {
    long[] index = new long[n];
    for (int i = 0; i < n; i++) {
      index[i] = 7L * i;
    }
    RepresentationBank shard = new RepresentationBank(index, null, null, 0, 1, trainingSet);
    shard.addSlice(Kind.PRE, new float[n]);
    return shard;
  }

  /** Per local row, how often it was drawn in {@code draws} draws; also checks distinct rows. */
  private static long[] counts(
      DeviceBank device,
      RepresentationBank shard,
      int extra,
      int[] batch,
      int draws,
      long[] batchRowsPerDraw) {
    ai.djl.engine.Engine.getEngine(DjlRuntime.ENGINE);
    int threads = DjlRuntime.numThreads();
    // thousands of small ops: one intra-op thread is many times faster on a loaded machine
    DjlRuntime.start(1);
    try {
      return countDraws(device, shard, extra, batch, draws, batchRowsPerDraw);
    } finally {
      DjlRuntime.start(threads);
    }
  }

  private static long[] countDraws(
      DeviceBank device,
      RepresentationBank shard,
      int extra,
      int[] batch,
      int draws,
      long[] batchRowsPerDraw) {
    long[] counts = new long[shard.size()];
    Set<Integer> inBatch = new HashSet<>();
    for (int b : batch) {
      inBatch.add(b);
    }
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray batchRows = rows(manager, batch);
      for (int d = 0; d < draws; d++) {
        try (NDManager draw = manager.newSubManager()) {
          NDArray local = batchRows.duplicate();
          local.attach(draw);
          Negatives negatives = device.sampleNegatives(Kind.PRE, extra, local);
          long[] index = negatives.index().toLongArray();
          boolean[] valid = negatives.valid() == null ? null : negatives.valid().toBooleanArray();
          Set<Long> seen = new HashSet<>();
          int hits = 0;
          for (int c = 0; c < index.length; c++) {
            assertTrue(seen.add(index[c]), "row drawn twice in draw " + d);
            assertTrue(valid == null || valid[c], "no padding expected in these shards");
            int row = (int) (index[c] / 7);
            counts[row]++;
            hits += inBatch.contains(row) ? 1 : 0;
          }
          batchRowsPerDraw[d] = hits;
        }
      }
    }
    return counts;
  }

  @Test
  void nonBatchRowsAreDrawnUniformly() {
    int n = 60;
    RepresentationBank shard = uniformShard(n, 600);
    int[] batch = {2, 9, 10, 33, 59, 41, 0, 25, 26, 50};
    int e = 10;
    int draws = 2000;
    Set<Integer> inBatch = new HashSet<>();
    for (int b : batch) {
      inBatch.add(b);
    }
    long[] perDraw = new long[draws];
    long[] counts;
    try (NDManager manager = NDManager.newBaseManager();
        DeviceBank device = DeviceBank.upload(manager, shard)) {
      DjlRuntime.seed(2024);
      counts = counts(device, shard, e, batch, draws, perDraw);
    }
    int others = n - batch.length;
    long total = 0;
    for (int r = 0; r < n; r++) {
      total += inBatch.contains(r) ? 0 : counts[r];
    }
    // E[K] = B·E/N = 1/6 batch rows per draw, so each non-batch row is drawn (E − 1/6)/(n − B)
    double expected = (e - batch.length * (double) e / 600) / others * draws;
    assertEquals(
        expected * others, total, 5 * Math.sqrt(expected * others), "non-batch rows drawn");
    double mean = (double) total / others;
    double p = mean / draws;
    double chi2 = 0;
    for (int r = 0; r < n; r++) {
      if (!inBatch.contains(r)) {
        assertEquals(mean, counts[r], 5 * Math.sqrt(mean * (1 - p)), "row " + r);
        chi2 += (counts[r] - mean) * (counts[r] - mean) / mean;
      }
    }
    // cell variance is mean·(1 − p) with p ≈ 0.2, so E[chi2] ≈ 49·0.8 ≈ 39; the 99.9 % point of
    // chi2 with 49 degrees of freedom is about 86 (and above that of the deflated statistic)
    assertTrue(chi2 < 86, "chi2 " + chi2);
    assertTrue(chi2 > 10, "too even to be random: chi2 " + chi2);
  }

  @Test
  void batchAwareDrawIncludesBatchRowsAsOftenAsAGlobalDraw() {
    int n = 100;
    long trainingSet = 1000;
    RepresentationBank shard = uniformShard(n, trainingSet);
    int[] batch = {3, 50, 51, 99, 0, 17, 18, 64, 70, 71};
    Set<Integer> inBatch = new HashSet<>();
    for (int b : batch) {
      inBatch.add(b);
    }
    int e = 50;
    int draws = 3000;
    long[] perDraw = new long[draws];
    long[] counts;
    try (NDManager manager = NDManager.newBaseManager();
        DeviceBank device = DeviceBank.upload(manager, shard)) {
      DjlRuntime.seed(7);
      counts = counts(device, shard, e, batch, draws, perDraw);
    }
    // K ~ Hypergeometric(N = 1000, B = 10, E = 50): a draw of E from N holds B·E/N = 0.5 batch
    // rows on average, not B·E/n = 5; check the law itself, not only its mean
    double[] pmf = hypergeometric(trainingSet, batch.length, e);
    long[] histogram = new long[batch.length + 1];
    double mean = 0;
    for (long k : perDraw) {
      histogram[(int) k]++;
      mean += k / (double) draws;
    }
    double pmfMean = 0;
    double pmfSquare = 0;
    for (int k = 0; k < pmf.length; k++) {
      pmfMean += k * pmf[k];
      pmfSquare += (double) k * k * pmf[k];
    }
    assertEquals(0.5, pmfMean, 1e-9);
    double variance = pmfSquare - pmfMean * pmfMean; // ≈ 0.47
    assertEquals(0.5, mean, 5 * Math.sqrt(variance / draws), "batch rows per draw");
    for (int k = 0; k <= 2; k++) {
      double expectedK = pmf[k] * draws;
      assertEquals(
          expectedK,
          histogram[k],
          5 * Math.sqrt(expectedK * (1 - pmf[k])),
          "draws with " + k + " batch rows");
    }
    double expectedOther = (e - 0.5) / (n - batch.length) * draws;
    for (int r = 0; r < n; r++) {
      if (!inBatch.contains(r)) {
        assertEquals(expectedOther, counts[r], 5 * Math.sqrt(expectedOther), "row " + r);
      }
    }
    // a bank that is the whole training set draws E rows uniformly, batch rows included
    RepresentationBank whole = uniformShard(n, n);
    long[] wholePerDraw = new long[600];
    try (NDManager manager = NDManager.newBaseManager();
        DeviceBank device = DeviceBank.upload(manager, whole)) {
      DjlRuntime.seed(8);
      counts(device, whole, e, batch, wholePerDraw.length, wholePerDraw);
    }
    double wholeMean = Arrays.stream(wholePerDraw).average().orElseThrow();
    // B·E/n = 5 with n = N; the variance of Hypergeometric(100, 10, 50) is about 2.27
    assertEquals(5.0, wholeMean, 5 * Math.sqrt(2.27 / wholePerDraw.length), "B·E/n with n = N");
  }

  /** P(K = k), k = 0..b, of K batch rows in a uniform draw of e from bigN holding b batch rows. */
  private static double[] hypergeometric(long bigN, int b, int e) {
    double[] p = new double[b + 1];
    for (int k = 0; k <= b; k++) {
      // C(b, k) C(N − b, e − k) / C(N, e), in logs
      p[k] = Math.exp(logChoose(b, k) + logChoose(bigN - b, e - k) - logChoose(bigN, e));
    }
    return p;
  }

  private static double logChoose(long n, long k) {
    double s = 0;
    for (long i = 0; i < k; i++) {
      s += Math.log((double) (n - i) / (k - i));
    }
    return s;
  }

  /**
   * A shard smaller than the draw: the columns it cannot fill are padding. The draw of the whole
   * training set would hold at most the shard's own rows plus rows of other shards; here the
   * non-batch rows are all drawn, the batch rows the global draw would include are valid, and the
   * rest of the columns are the other batch rows, marked invalid in all their slices.
   */
  @Test
  void aShardSmallerThanTheDrawPadsWithInvalidColumns() {
    int n = 8;
    long[] index = new long[n];
    for (int i = 0; i < n; i++) {
      index[i] = 7L * i;
    }
    int[] batch = {1, 4, 6};
    Set<Integer> inBatch = Set.of(1, 4, 6);
    for (long trainingSet : new long[] {1000, 10}) {
      RepresentationBank shard = new RepresentationBank(index, new int[n], null, 0, 2, trainingSet);
      float[] v = new float[n * 2];
      for (int i = 0; i < v.length; i++) {
        v[i] = i / 64f;
      }
      shard.addSlice(Kind.SNAP, v);
      shard.addSlice(Kind.SNAP, v);
      try (NDManager manager = NDManager.newBaseManager();
          DeviceBank device = DeviceBank.upload(manager, shard)) {
        NDArray batchRows = rows(manager, batch);
        long batchIncluded = 0;
        int draws = 200;
        for (int d = 0; d < draws; d++) {
          DjlRuntime.seed(d);
          // E = min(40 / 2, N) = 20 rows (10 when N = 10), the shard holds 8: 8 columns of rows
          Draw draw = Draw.of(device.sampleNegatives(Kind.SNAP, 40, batchRows));
          assertEquals(2 * n, draw.columns());
          int[] r = draw.rows(shard, 2);
          assertEquals(n, Arrays.stream(r).distinct().count(), "every shard row once");
          assertArrayEquals(shard.gather(Kind.SNAP, r), draw.vectors());
          int k = 0;
          for (int i = 0; i < r.length; i++) {
            boolean valid = draw.valid()[2 * i];
            if (!inBatch.contains(r[i])) {
              assertTrue(valid, "a non-batch row is a real candidate");
            } else if (valid) {
              k++;
            }
          }
          assertEquals(2 * (n - batch.length + k), draw.validCount());
          batchIncluded += k;
        }
        if (trainingSet == 10) {
          // E = N: the global draw holds every row, so every batch row of the shard is valid
          assertEquals((long) draws * batch.length, batchIncluded);
        } else {
          // E[K] = 3·20/1000 = 0.06 per draw: most batch rows are padding
          assertTrue(batchIncluded < 0.2 * draws, "batch rows valid " + batchIncluded + " times");
        }
      }
    }
  }

  @Test
  void serializesWithAllSlices() throws Exception {
    RepresentationBank bank = bank();
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(bank);
    }
    RepresentationBank copy;
    try (ObjectInputStream in =
        new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      copy = (RepresentationBank) in.readObject();
    }
    int[] rows = {4, 2, 0};
    for (Kind kind : Kind.values()) {
      assertEquals(bank.slices(kind), copy.slices(kind));
      assertArrayEquals(bank.gather(kind, rows), copy.gather(kind, rows));
    }
    assertArrayEquals(bank.globalIndices(rows), copy.globalIndices(rows));
    assertArrayEquals(bank.labels(rows), copy.labels(rows));
    assertArrayEquals(bank.teacherLogits(rows), copy.teacherLogits(rows));
    assertEquals(bank.trainingSetSize(), copy.trainingSetSize());
    // the copy draws the same negatives under the same engine seed
    try (NDManager manager = NDManager.newBaseManager();
        DeviceBank a = DeviceBank.upload(manager, bank);
        DeviceBank b = DeviceBank.upload(manager, copy)) {
      NDArray batch = rows(manager, 2);
      DjlRuntime.seed(77);
      Draw fromBank = Draw.of(a.sampleNegatives(Kind.SNAP, 4, batch));
      DjlRuntime.seed(77);
      Draw fromCopy = Draw.of(b.sampleNegatives(Kind.SNAP, 4, batch));
      assertArrayEquals(fromBank.index(), fromCopy.index());
      assertArrayEquals(fromBank.vectors(), fromCopy.vectors());
    }
    copy.addSlice(Kind.SNAP, slice(4));
    assertEquals(3, copy.slices(Kind.SNAP));
    assertEquals(2, bank.slices(Kind.SNAP));
    // vectors dominate the serialised size: 4 slices × 15 halves = 120 bytes, not 240 for floats
    assertTrue(bytes.size() < 1200, "serialised size " + bytes.size());
  }

  @Test
  void memoryIsTwoBytesPerComponent() {
    SplittableRandom random = new SplittableRandom(1);
    int n = 10_000;
    int h = 384;
    long[] index = new long[n];
    for (int i = 0; i < n; i++) {
      index[i] = i;
    }
    RepresentationBank bank = new RepresentationBank(index, new int[n], new float[n * 2], 2, h);
    float[] v = new float[n * h];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) random.nextDouble(-1, 1);
    }
    bank.addSlice(Kind.PRE, v);
    bank.addSlice(Kind.FINE, v);
    bank.addSlice(Kind.SNAP, v);
    long expected = 3L * n * h * 2 + n * 8L + n * 4L + n * 2L * 4;
    assertEquals(expected, bank.memoryBytes());
  }
}
