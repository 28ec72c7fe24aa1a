package io.capprune.core.bank;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.bank.RepresentationBank.Negatives;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.Arrays;
import java.util.HashSet;
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
    RepresentationBank bank = new RepresentationBank(
        new long[] {40, 11, 7, 93, 5}, new int[] {0, 1, 1, 0, 2},
        new float[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 2, H);
    bank.addSlice(Kind.PRE, slice(0));
    bank.addSlice(Kind.FINE, slice(1));
    bank.addSlice(Kind.SNAP, slice(2));
    bank.addSlice(Kind.SNAP, slice(3));
    return bank;
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
      300 / 1024f, 301 / 1024f, 302 / 1024f};
    assertArrayEquals(expected, got);
    assertArrayEquals(new float[] {110 / 1024f, 111 / 1024f, 112 / 1024f},
        bank.gather(Kind.FINE, new int[] {1}));
    assertArrayEquals(new long[] {93, 40}, bank.globalIndices(new int[] {3, 0}));
    assertArrayEquals(new int[] {0, 2}, bank.labels(new int[] {3, 4}));
    assertArrayEquals(new float[] {8, 9, 2, 3}, bank.teacherLogits(new int[] {4, 1}));
    try (NDManager manager = NDManager.newBaseManager()) {
      NDArray g = bank.gather(manager, Kind.SNAP, new int[] {3, 0});
      assertEquals(new Shape(2, 2, H), g.getShape());
      assertArrayEquals(expected, g.toFloatArray());
    }
  }

  @Test
  void storesHalfPrecision() {
    RepresentationBank bank = new RepresentationBank(new long[] {0}, null, null, 0, 2);
    bank.addSlice(Kind.PRE, new float[] {1f / 3, -0.7f});
    float[] got = bank.gather(Kind.PRE, new int[] {0});
    assertEquals(0.333251953125f, got[0]);
    assertEquals(Half.toFloat(Half.fromFloat(-0.7f)), got[1]);
    assertTrue(Math.abs(got[1] + 0.7f) < 0x1p-12);
    assertEquals(2 * 2 + 8, bank.memoryBytes(), "two halves plus one long index");
    assertNull(bank.labels(new int[] {0}));
    assertFalse(bank.hasTeacherLogits());
  }

  @Test
  void badInputIsNamed() {
    RepresentationBank bank = bank();
    assertEquals("PRE slice already present; only SNAP grows",
        assertThrows(IllegalStateException.class, () -> bank.addSlice(Kind.PRE, slice(0))).getMessage());
    assertEquals("SNAP slice 2 has 14 values, expected n × H = 5 × 3 = 15",
        assertThrows(IllegalArgumentException.class,
            () -> bank.addSlice(Kind.SNAP, new float[14])).getMessage());
    float[] withNaN = slice(4);
    withNaN[7] = Float.NaN;
    assertEquals("SNAP slice 2: row 2 (global index 7) component 1 is NaN, not a finite half-precision value",
        assertThrows(IllegalArgumentException.class, () -> bank.addSlice(Kind.SNAP, withNaN)).getMessage());
    assertEquals(2, bank.slices(Kind.SNAP), "a rejected slice is not half-added");
    assertEquals("local row 5 outside bank of 5 rows",
        assertThrows(IndexOutOfBoundsException.class,
            () -> bank.gather(Kind.PRE, new int[] {0, 5})).getMessage());
    assertEquals("global index 7 appears twice; each training row must be in one bank row",
        assertThrows(IllegalArgumentException.class,
            () -> new RepresentationBank(new long[] {7, 1, 7}, null, null, 0, 4)).getMessage());
    assertEquals("teacherLogits has 5 values but n × numClasses = 3 × 2 = 6",
        assertThrows(IllegalArgumentException.class,
            () -> new RepresentationBank(new long[] {0, 1, 2}, null, new float[5], 2, 4)).getMessage());
    assertEquals("negative label -1 at row 1 (global index 8)",
        assertThrows(IllegalArgumentException.class,
            () -> new RepresentationBank(new long[] {3, 8}, new int[] {0, -1}, null, 0, 4)).getMessage());
    RepresentationBank empty = new RepresentationBank(new long[] {0}, null, null, 0, 1);
    assertEquals("SNAP bank is empty: no negatives to draw",
        assertThrows(IllegalStateException.class, () -> empty.sampleNegatives(Kind.SNAP, 8, 1)).getMessage());
  }

  @Test
  void negativesTakeAllSlicesOfDistinctRows() {
    RepresentationBank bank = bank();
    // floor(5 / 2) = 2 rows of the SNAP bank, each with its 2 slices
    Negatives negatives = bank.sampleNegatives(Kind.SNAP, 5, 123);
    assertEquals(2, negatives.rows().length);
    assertEquals(4, negatives.columns());
    assertEquals(2, negatives.slicesPerRow());
    int a = negatives.rows()[0];
    int b = negatives.rows()[1];
    assertTrue(a != b);
    long[] g = bank.globalIndices(new int[] {a, b});
    assertArrayEquals(new long[] {g[0], g[0], g[1], g[1]}, negatives.globalIndex());
    int[] y = bank.labels(new int[] {a, b});
    assertArrayEquals(new int[] {y[0], y[0], y[1], y[1]}, negatives.labels());
    assertArrayEquals(bank.gather(Kind.SNAP, new int[] {a, b}), negatives.vectors());
    // asking for more than the shard holds yields every row once
    Negatives all = bank.sampleNegatives(Kind.PRE, 4096, 9);
    int[] rows = all.rows().clone();
    Arrays.sort(rows);
    assertArrayEquals(new int[] {0, 1, 2, 3, 4}, rows);
    assertEquals(0, bank.sampleNegatives(Kind.SNAP, 1, 9).columns(), "floor(1 / 2) = 0 rows");
  }

  @Test
  void samplingIsDistinctSeededAndUniform() {
    assertArrayEquals(RepresentationBank.sampleDistinct(1000, 50, 42),
        RepresentationBank.sampleDistinct(1000, 50, 42));
    assertFalse(Arrays.equals(RepresentationBank.sampleDistinct(1000, 50, 42),
        RepresentationBank.sampleDistinct(1000, 50, 43)));
    int n = 50;
    int k = 10;
    int draws = 20_000;
    long[] counts = new long[n];
    long[][] pairs = new long[n][n];
    for (int d = 0; d < draws; d++) {
      int[] s = RepresentationBank.sampleDistinct(n, k, d);
      Set<Integer> seen = new HashSet<>();
      for (int x : s) {
        assertTrue(x >= 0 && x < n);
        assertTrue(seen.add(x), "duplicate " + x + " in draw " + d);
        counts[x]++;
      }
      pairs[s[0]][s[1]]++;
    }
    double expected = (double) draws * k / n; // 4000
    double sd = Math.sqrt(expected * (1 - (double) k / n));
    double chi2 = 0;
    for (int i = 0; i < n; i++) {
      assertTrue(Math.abs(counts[i] - expected) < 5 * sd, "row " + i + " drawn " + counts[i] + " times");
      chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
    }
    // variance per cell is expected·(1 − k/n), so E[chi2] = (n−1)·0.8 ≈ 39; 99.9 % bound for 49 d.o.f. is about 86
    assertTrue(chi2 < 86, "chi2 " + chi2);
    assertTrue(chi2 > 10, "too even to be random: chi2 " + chi2);
  }

  @Test
  void samplingCostDoesNotDependOnN() {
    // an O(n) method would allocate gigabytes here
    int[] s = RepresentationBank.sampleDistinct(Integer.MAX_VALUE, 4096, 5);
    assertEquals(4096, Arrays.stream(s).distinct().count());
    assertEquals(4096, RepresentationBank.sampleDistinct(4096, 4096, 5).length);
    assertThrows(IllegalArgumentException.class, () -> RepresentationBank.sampleDistinct(3, 4, 5));
  }

  @Test
  void serializesWithAllSlices() throws Exception {
    RepresentationBank bank = bank();
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(bank);
    }
    RepresentationBank copy;
    try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
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
    assertArrayEquals(bank.sampleNegatives(Kind.SNAP, 4, 77).rows(), copy.sampleNegatives(Kind.SNAP, 4, 77).rows());
    copy.addSlice(Kind.SNAP, slice(4));
    assertEquals(3, copy.slices(Kind.SNAP));
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

  @Test
  void batchAwareDrawIncludesBatchRowsAsOftenAsAGlobalDraw() {
    int n = 100;
    long trainingSet = 1000;
    long[] index = new long[n];
    for (int i = 0; i < n; i++) {
      index[i] = 7 * i;
    }
    RepresentationBank shard = new RepresentationBank(index, null, null, 0, 1, trainingSet);
    shard.addSlice(Kind.PRE, new float[n]);
    int[] batch = {3, 50, 51, 99, 0, 17, 18, 64, 70, 71};
    Set<Integer> inBatch = new HashSet<>();
    for (int b : batch) {
      inBatch.add(b);
    }
    int e = 50;
    int draws = 20_000;
    long batchHits = 0;
    long[] counts = new long[n];
    for (int d = 0; d < draws; d++) {
      Negatives negatives = shard.sampleNegatives(Kind.PRE, e, batch, d);
      int[] rows = negatives.rows();
      assertEquals(e, rows.length);
      assertEquals(e, Arrays.stream(rows).distinct().count(), "distinct rows");
      for (int r : rows) {
        counts[r]++;
        batchHits += inBatch.contains(r) ? 1 : 0;
      }
    }
    // a draw of E from N holds B·E/N = 0.5 batch rows on average, not B·E/n = 5
    double perDraw = (double) batchHits / draws;
    assertEquals(0.5, perDraw, 0.03, "batch rows per draw");
    double expectedOther = (e - 0.5) / (n - batch.length) * draws;
    for (int r = 0; r < n; r++) {
      if (!inBatch.contains(r)) {
        assertEquals(expectedOther, counts[r], 5 * Math.sqrt(expectedOther), "row " + r);
      }
    }
    assertArrayEquals(shard.sampleNegatives(Kind.PRE, e, batch, 4).rows(),
        shard.sampleNegatives(Kind.PRE, e, batch, 4).rows(), "seeded");
    // a bank that is the whole training set draws E rows uniformly, batch rows included
    RepresentationBank whole = new RepresentationBank(index, null, null, 0, 1);
    whole.addSlice(Kind.PRE, new float[n]);
    long wholeHits = 0;
    for (int d = 0; d < draws; d++) {
      for (int r : whole.sampleNegatives(Kind.PRE, e, batch, d).rows()) {
        wholeHits += inBatch.contains(r) ? 1 : 0;
      }
    }
    assertEquals(5.0, (double) wholeHits / draws, 0.1, "B·E/n with n = N");
    assertEquals("batch row 50 appears twice", assertThrows(IllegalArgumentException.class,
        () -> shard.sampleNegatives(Kind.PRE, e, new int[] {50, 3, 50}, 1)).getMessage());
    assertEquals("trainingSetSize 99 is smaller than this shard's 100 rows",
        assertThrows(IllegalArgumentException.class,
            () -> new RepresentationBank(index, null, null, 0, 1, 99)).getMessage());
  }
}
