package io.capprune.core.prune;

import io.capprune.core.optim.ParallelLoops;
import java.util.Arrays;
import java.util.List;

/**
 * Binary masks (1 keep, 0 prune) from scores or weights, written into float arrays so they can be
 * multiplied into weights and stored like any other tensor.
 *
 * <p>Top-k keeps exactly {@code k = int(theta * n)} elements. Selection is a two-level radix select
 * on the order-preserving integer image of the floats (16 high bits, then 16 low bits of the
 * elements in the boundary bucket): O(n), no sort, no boxing. Among elements equal to the k-th
 * largest value the lowest flat indices are kept (the reference's order among ties is whatever
 * {@code torch.sort} returns, i.e. unspecified); {@code -0.0} and {@code 0.0} are equal.
 */
public final class MaskComputer {

  private static final int BINS = 1 << 16;

  /** Per-thread buffers: the histogram and the indices of the boundary bucket. */
  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

  private MaskComputer() {}

  /** {@code int(theta * n)}, the number of elements top-k keeps, as the reference computes it. */
  public static long keepCount(double theta, long n) {
    if (!(theta >= 0 && theta <= 1)) {
      throw new IllegalArgumentException(
          "fraction of weights kept must be in [0, 1], got " + theta);
    }
    return (long) (theta * n);
  }

  /** The soft-movement floor: at least {@code int(0.005 n) + 1} elements of a matrix stay. */
  public static int softFloor(int n) {
    return Math.min(n, (int) (0.005 * n) + 1);
  }

  /**
   * Writes into {@code mask} 1 for the {@code k} largest {@code values} (of |values| when {@code
   * magnitude}), 0 elsewhere. {@code name} names the tensor in errors (NaN values).
   */
  public static void topK(String name, float[] values, boolean magnitude, int k, float[] mask) {
    int n = values.length;
    checkMask(name, n, mask);
    if (k < 0 || k > n) {
      throw new IllegalArgumentException(
          "top-k of '" + name + "': k=" + k + " outside [0, " + n + "]");
    }
    if (k == 0) {
      Arrays.fill(mask, 0f);
      return;
    }
    int[] hist = histogram();
    highHistogram(name, values, magnitude, hist);
    topKFromHistogram(name, values, magnitude, k, mask, hist);
  }

  /**
   * This thread's zeroed histogram of {@link #BUCKETS} counters, for callers that build the
   * high-bits histogram while they write the values ({@link #bucketOf}) and then call {@link
   * #topKFromHistogram} on the same thread.
   */
  public static int[] histogram() {
    int[] hist = SCRATCH.get().hist;
    Arrays.fill(hist, 0);
    return hist;
  }

  /** Number of first-level buckets: the 16 high bits of the order-preserving key. */
  public static final int BUCKETS = BINS;

  /** The first-level bucket of a value: larger values have larger buckets. */
  public static int bucketOf(float v, boolean magnitude) {
    return key(v, magnitude) >>> 16;
  }

  /**
   * Top-k given the histogram of {@link #bucketOf} over {@code values}; saves the pass that builds
   * it when the caller just wrote the values. Must run on the thread that owns {@code hist} if it
   * came from {@link #histogram()}; it is overwritten.
   */
  public static void topKFromHistogram(
      String name, float[] values, boolean magnitude, int k, float[] mask, int[] hist) {
    int n = values.length;
    checkMask(name, n, mask);
    if (k < 0 || k > n) {
      throw new IllegalArgumentException(
          "top-k of '" + name + "': k=" + k + " outside [0, " + n + "]");
    }
    if (k == 0) {
      Arrays.fill(mask, 0f);
      return;
    }
    long[] found = findBucket(hist, k);
    int bucket = (int) found[0];
    int need = (int) found[1];
    int[] list = SCRATCH.get().list(hist[bucket] + 1);
    int listed = splitOnBucket(name, values, magnitude, bucket, mask, list);
    Arrays.fill(hist, 0);
    for (int j = 0; j < listed; j++) {
      hist[key(values[list[j]], magnitude) & 0xFFFF]++;
    }
    long[] low = findBucket(hist, need);
    resolveBucket(values, magnitude, list, listed, (int) low[0], (int) low[1], mask);
  }

  /**
   * Soft movement: 1 where sigmoid(score) > tau. The comparison is done as {@code score >
   * logit(tau)} (sigmoid is monotone, so this is the same set up to float rounding at the boundary
   * and avoids an exp per element). If fewer than {@link #softFloor} pass, the floor's worth of
   * highest scores is kept instead. Returns the number kept.
   */
  public static int softThreshold(String name, float[] scores, double tau, float[] mask) {
    int n = scores.length;
    checkMask(name, n, mask);
    if (!(tau >= 0 && tau <= 1)) {
      throw new IllegalArgumentException(
          "soft threshold of '" + name + "' must be in [0, 1], got " + tau);
    }
    double cut =
        tau <= 0
            ? Double.NEGATIVE_INFINITY
            : tau >= 1 ? Double.POSITIVE_INFINITY : Math.log(tau / (1 - tau));
    int kept = 0;
    boolean nan = false;
    for (int i = 0; i < n; i++) {
      float v = scores[i];
      nan |= v != v;
      boolean keep = v > cut;
      mask[i] = keep ? 1f : 0f;
      kept += keep ? 1 : 0;
    }
    if (nan) {
      throw nanError(name, scores);
    }
    int floor = softFloor(n);
    if (kept < floor) {
      topK(name, scores, false, floor, mask);
      return floor;
    }
    return kept;
  }

  /**
   * Global top-k: one threshold over all matrices, {@code k = int(theta * total)}; ties at the
   * threshold go to earlier matrices (list order) first, then lower indices. Returns the number
   * kept per matrix.
   */
  public static long[] globalTopK(
      List<String> names,
      List<float[]> values,
      boolean magnitude,
      double theta,
      List<float[]> masks) {
    int m = values.size();
    long total = 0;
    for (int i = 0; i < m; i++) {
      checkMask(names.get(i), values.get(i).length, masks.get(i));
      total += values.get(i).length;
    }
    long k = keepCount(theta, total);
    long[] kept = new long[m];
    if (k == 0) {
      ParallelLoops.forEach(m, i -> Arrays.fill(masks.get(i), 0f));
      return kept;
    }
    int[][] hists = new int[m][];
    ParallelLoops.forEach(
        m,
        i -> {
          hists[i] = new int[BINS];
          highHistogram(names.get(i), values.get(i), magnitude, hists[i]);
        });
    long[] sum = new long[BINS];
    for (int[] h : hists) {
      for (int b = 0; b < BINS; b++) {
        sum[b] += h[b];
      }
    }
    long[] found = findBucket(sum, k);
    int bucket = (int) found[0];
    long need = found[1];
    int[][] lists = new int[m][];
    int[] listed = new int[m];
    ParallelLoops.forEach(
        m,
        i -> {
          lists[i] = new int[hists[i][bucket] + 1];
          listed[i] =
              splitOnBucket(names.get(i), values.get(i), magnitude, bucket, masks.get(i), lists[i]);
        });
    Arrays.fill(sum, 0);
    for (int i = 0; i < m; i++) {
      float[] v = values.get(i);
      for (int j = 0; j < listed[i]; j++) {
        sum[key(v[lists[i][j]], magnitude) & 0xFFFF]++;
      }
    }
    long[] low = findBucket(sum, need);
    int lowBucket = (int) low[0];
    long ties = low[1];
    // Ties are handed out in matrix order, so count each matrix's ties before resolving in
    // parallel.
    int[] quota = new int[m];
    for (int i = 0; i < m; i++) {
      float[] v = values.get(i);
      int eq = 0;
      for (int j = 0; j < listed[i]; j++) {
        eq += (key(v[lists[i][j]], magnitude) & 0xFFFF) == lowBucket ? 1 : 0;
      }
      quota[i] = (int) Math.min(eq, ties);
      ties -= quota[i];
    }
    ParallelLoops.forEach(
        m,
        i -> {
          resolveBucket(
              values.get(i), magnitude, lists[i], listed[i], lowBucket, quota[i], masks.get(i));
          kept[i] = countOnes(masks.get(i));
        });
    return kept;
  }

  static long countOnes(float[] mask) {
    long c = 0;
    for (float v : mask) {
      c += v != 0f ? 1 : 0;
    }
    return c;
  }

  /**
   * Order-preserving unsigned image of a float (as an int compared unsigned): magnitude uses the
   * bits without the sign; otherwise negative floats have all bits flipped and positive floats the
   * sign bit set. {@code + 0f} turns -0.0 into 0.0 so both tie.
   */
  private static int key(float v, boolean magnitude) {
    int bits = Float.floatToRawIntBits(v + 0f);
    if (magnitude) {
      return bits & 0x7FFFFFFF;
    }
    return bits ^ ((bits >> 31) | 0x80000000);
  }

  private static void highHistogram(String name, float[] values, boolean magnitude, int[] hist) {
    boolean nan = false;
    for (float v : values) {
      nan |= v != v;
      hist[key(v, magnitude) >>> 16]++;
    }
    if (nan) {
      throw nanError(name, values);
    }
  }

  /** The bucket holding the k-th largest element and how many of it are still needed. */
  private static long[] findBucket(int[] hist, long k) {
    long above = 0;
    for (int b = hist.length - 1; b >= 0; b--) {
      if (above + hist[b] >= k) {
        return new long[] {b, k - above};
      }
      above += hist[b];
    }
    throw new IllegalStateException("histogram holds " + above + " elements, fewer than k=" + k);
  }

  private static long[] findBucket(long[] hist, long k) {
    long above = 0;
    for (int b = hist.length - 1; b >= 0; b--) {
      if (above + hist[b] >= k) {
        return new long[] {b, k - above};
      }
      above += hist[b];
    }
    throw new IllegalStateException("histogram holds " + above + " elements, fewer than k=" + k);
  }

  /**
   * Decides every element outside the boundary bucket and lists the ones inside, in index order.
   */
  private static int splitOnBucket(
      String name, float[] values, boolean magnitude, int bucket, float[] mask, int[] list) {
    int listed = 0;
    boolean nan = false;
    for (int i = 0; i < values.length; i++) {
      float v = values[i];
      nan |= v != v;
      int b = key(v, magnitude) >>> 16;
      mask[i] = b > bucket ? 1f : 0f;
      // Branch-free append (the list has one spare slot): early in training half of a matrix can
      // sit in the boundary bucket, and a branch on it would mispredict half the time.
      list[listed] = i;
      listed += b == bucket ? 1 : 0;
    }
    if (nan) {
      throw nanError(name, values);
    }
    return listed;
  }

  /** Keeps the listed elements above the low bucket and the first {@code ties} equal to it. */
  private static void resolveBucket(
      float[] values,
      boolean magnitude,
      int[] list,
      int listed,
      int lowBucket,
      long ties,
      float[] mask) {
    long left = ties;
    for (int j = 0; j < listed; j++) {
      int i = list[j];
      int lo = key(values[i], magnitude) & 0xFFFF;
      if (lo > lowBucket || (lo == lowBucket && left-- > 0)) {
        mask[i] = 1f;
      }
    }
  }

  private static void checkMask(String name, int n, float[] mask) {
    if (mask.length != n) {
      throw new IllegalArgumentException(
          "mask of '" + name + "' has " + mask.length + " elements but the tensor has " + n);
    }
  }

  private static IllegalArgumentException nanError(String name, float[] values) {
    int at = 0;
    while (at < values.length && !Float.isNaN(values[at])) {
      at++;
    }
    return new IllegalArgumentException(
        "'" + name + "' holds NaN (first at flat index " + at + ")");
  }

  private static final class Scratch {
    final int[] hist = new int[BINS];
    int[] list = new int[0];

    int[] list(int n) {
      if (list.length < n) {
        list = new int[Math.max(n, list.length * 2)];
      }
      return list;
    }
  }
}
