package io.capprune.core.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bank.DeviceBank;
import io.capprune.core.bank.Negatives;
import io.capprune.core.bank.RepresentationBank;
import io.capprune.core.bank.RepresentationBank.Kind;
import io.capprune.core.bert.DjlRuntime;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * docs/decisions.md decision 6: extra negatives come from the rows of the batch's own shard, not
 * from the whole training set as in the reference (docs/cap-math.md §1.3). On a uniformly random
 * partition the two draws have the same distribution except that a batch row is more likely to be
 * drawn as its own extra (E/n_shard instead of E/N). This measures the CAP loss under both on the
 * same batches and checks the expectations agree within the sampling noise.
 *
 * <p>All draws run on the device with the engine's generator: the batch-aware one is {@link
 * DeviceBank#sampleNegatives}; the plain shard draw and the reference's global draw, which only
 * this test needs, are the E smallest of uniform keys over the shard's or all N rows.
 */
class ShardLocalSamplingTest {

  private static final int N = 40_000;
  private static final int SHARDS = 4;
  private static final int H = 32;
  private static final int CLASSES = 3;
  private static final int B = 16;
  private static final int EXTRA = 512;
  private static final int TRIALS = 400;

  /** Synthetic training set: class-structured "true" vectors, bank = a noisy view of them. */
  private record Data(long[] index, int[] labels, float[] bank, float[] student) {}

  private static Data data() {
    SplittableRandom random = new SplittableRandom(2022);
    double[][] centres = new double[CLASSES][H];
    for (double[] c : centres) {
      for (int h = 0; h < H; h++) {
        c[h] = random.nextGaussian() * 0.5;
      }
    }
    long[] index = new long[N];
    int[] labels = new int[N];
    float[] bank = new float[N * H];
    float[] student = new float[N * H];
    double[] v = new double[H];
    for (int i = 0; i < N; i++) {
      index[i] = i;
      labels[i] = random.nextInt(CLASSES);
      for (int h = 0; h < H; h++) {
        v[h] = centres[labels[i]][h] + random.nextGaussian() / Math.sqrt(H) * 3;
      }
      noisyUnit(random, v, bank, i);
      noisyUnit(random, v, student, i);
    }
    return new Data(index, labels, bank, student);
  }

  private static void noisyUnit(SplittableRandom random, double[] v, float[] out, int row) {
    double[] x = new double[H];
    double n = 0;
    for (int h = 0; h < H; h++) {
      x[h] = v[h] + random.nextGaussian() / Math.sqrt(H) * 1.5;
      n += x[h] * x[h];
    }
    for (int h = 0; h < H; h++) {
      out[row * H + h] = (float) (x[h] / Math.sqrt(n));
    }
  }

  private static RepresentationBank bankOf(Data d, int[] rows, long trainingSetSize) {
    long[] index = new long[rows.length];
    int[] labels = new int[rows.length];
    float[] vectors = new float[rows.length * H];
    for (int i = 0; i < rows.length; i++) {
      index[i] = d.index()[rows[i]];
      labels[i] = d.labels()[rows[i]];
      System.arraycopy(d.bank(), rows[i] * H, vectors, i * H, H);
    }
    RepresentationBank bank = new RepresentationBank(index, labels, null, 0, H, trainingSetSize);
    bank.addSlice(Kind.PRE, vectors);
    return bank;
  }

  /** k distinct rows of [0, n), uniform over k-subsets (a partial Fisher-Yates shuffle). */
  private static int[] distinct(SplittableRandom random, int n, int k) {
    int[] perm = java.util.stream.IntStream.range(0, n).toArray();
    for (int i = 0; i < k; i++) {
      int j = i + random.nextInt(n - i);
      int tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
    }
    return Arrays.copyOf(perm, k);
  }

  /**
   * The draw that ignores the batch, with the engine's generator: E distinct rows uniformly from
   * all of {@code bank}'s rows (the E smallest of n uniform keys). On the bank of the whole
   * training set it is the reference's draw; on a shard it is the plain shard-local draw.
   */
  private static Negatives uniformDraw(DeviceBank bank, int n, int e, NDManager manager) {
    NDArray keys = manager.randomUniform(0f, 1f, new Shape(n), DataType.FLOAT32);
    NDArray rows = keys.topK(e, 0, false, false).get(1);
    return new Negatives(
        bank.gather(Kind.PRE, rows).reshape(e, H), bank.globalIndex(rows), bank.labels(rows), null);
  }

  private static double mean(double[] x) {
    return Arrays.stream(x).average().orElseThrow();
  }

  private static double sd(double[] x) {
    double m = mean(x);
    return Math.sqrt(Arrays.stream(x).map(v -> (v - m) * (v - m)).sum() / (x.length - 1));
  }

  private static double[] minus(double[] a, double[] b) {
    double[] d = new double[a.length];
    for (int i = 0; i < d.length; i++) {
      d[i] = a[i] - b[i];
    }
    return d;
  }

  /** Loss per trial (same batch in all three) with each way of drawing the extras. */
  private record Losses(double[] plainLocal, double[] batchAwareLocal, double[] global) {}

  private static Losses measure(Data d, int[][] shards) {
    ContrastiveLoss loss = new ContrastiveLoss(0.1f, 0.1f, 10f);
    SplittableRandom random = new SplittableRandom(7);
    Losses out = new Losses(new double[TRIALS], new double[TRIALS], new double[TRIALS]);
    try (NDManager base = NDManager.newBaseManager()) {
      DeviceBank global =
          DeviceBank.upload(base, bankOf(d, java.util.stream.IntStream.range(0, N).toArray(), N));
      DeviceBank[] local = new DeviceBank[shards.length];
      for (int s = 0; s < shards.length; s++) {
        local[s] = DeviceBank.upload(base, bankOf(d, shards[s], N));
      }
      DjlRuntime.seed(2022);
      for (int t = 0; t < TRIALS; t++) {
        int shard = random.nextInt(shards.length);
        int[] localRows = distinct(random, shards[shard].length, B);
        float[] z = new float[B * H];
        long[] rows = new long[B];
        for (int i = 0; i < B; i++) {
          System.arraycopy(d.student(), shards[shard][localRows[i]] * H, z, i * H, H);
          rows[i] = localRows[i];
        }
        try (NDManager manager = base.newSubManager()) {
          NDArray anchors = manager.create(z, new Shape(B, H));
          NDArray batchRows = manager.create(rows);
          DeviceBank own = local[shard];
          NDArray slices = own.gather(Kind.PRE, batchRows);
          NDArray index = own.globalIndex(batchRows);
          NDArray labels = own.labels(batchRows);
          Negatives[] draws = {
            uniformDraw(own, shards[shard].length, EXTRA, manager),
            own.sampleNegatives(Kind.PRE, EXTRA, batchRows),
            uniformDraw(global, N, EXTRA, manager)
          };
          double[][] targets = {out.plainLocal(), out.batchAwareLocal(), out.global()};
          for (int k = 0; k < 3; k++) {
            assertEquals(EXTRA, draws[k].columns());
            targets[k][t] =
                loss.compute(anchors, anchors.stopGradient(), index, labels, slices, draws[k])
                    .totalValue();
          }
        }
      }
    }
    return out;
  }

  private static int[][] randomPartition(SplittableRandom random) {
    int[] perm = java.util.stream.IntStream.range(0, N).toArray();
    for (int i = N - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      int tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
    }
    int[][] shards = new int[SHARDS][];
    for (int s = 0; s < SHARDS; s++) {
      shards[s] = Arrays.copyOfRange(perm, s * N / SHARDS, (s + 1) * N / SHARDS);
    }
    return shards;
  }

  @Test
  void shardLocalNegativesMatchGlobalOnARandomPartition() {
    Losses m;
    ai.djl.engine.Engine.getEngine(DjlRuntime.ENGINE);
    int threads = DjlRuntime.numThreads();
    // thousands of small ops: one intra-op thread is many times faster on a loaded machine
    DjlRuntime.start(1);
    try {
      m = measure(data(), randomPartition(new SplittableRandom(11)));
    } finally {
      DjlRuntime.start(threads);
    }
    double[] aware = minus(m.batchAwareLocal(), m.global());
    double[] plain = minus(m.plainLocal(), m.global());
    double seAware = sd(aware) / Math.sqrt(TRIALS);
    double sePlain = sd(plain) / Math.sqrt(TRIALS);
    System.out.printf(
        "shard-local vs global extras (PRE bank, PrC unsup + sup), %d trials, N=%d,"
            + " %d shards, E=%d, B=%d:%n  mean loss global %.5f (per-step sd %.5f),"
            + " batch-aware local %.5f, plain local %.5f%n"
            + "  batch-aware − global %.6f ± %.6f (SE), plain − global %.6f ± %.6f (SE)%n",
        TRIALS,
        N,
        SHARDS,
        EXTRA,
        B,
        mean(m.global()),
        sd(m.global()),
        mean(m.batchAwareLocal()),
        mean(m.plainLocal()),
        mean(aware),
        seAware,
        mean(plain),
        sePlain);
    assertTrue(
        Math.abs(mean(aware)) < 3 * seAware,
        "batch-aware shard-local draw differs from the global one: "
            + mean(aware)
            + " ± "
            + seAware);
    assertTrue(
        Math.abs(mean(aware)) < 0.1 * sd(m.global()),
        "difference small against the step-to-step noise of the reference itself");
    // the comparison has the power to see a real difference: the plain shard draw re-draws batch
    // rows as their own extras E/n instead of E/N of the time, and that shows
    assertTrue(
        Math.abs(mean(plain)) > 5 * sePlain,
        "plain shard-local draw expected to be biased: " + mean(plain) + " ± " + sePlain);
  }
}
