package io.capprune.core.exchange;

import io.capprune.core.optim.ParallelLoops;
import io.capprune.core.tensor.HostTensor;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One step's effective weights W' = W * M as they travel to the executors: of a masked matrix only
 * the entries its mask keeps (the rest of W' is zero, and the executor already has the {@link
 * MaskSet}), every other tensor whole. The values of all tensors form one stream in tensor order,
 * in fp32, or in fp16 with one scale per block of the stream ({@link HalfBlocks}), so a worker
 * uploads the stream in one copy and scatters it into the resident weights on its device ({@link
 * DeviceWeights}).
 */
public final class PackedWeights implements Serializable {
  private static final long serialVersionUID = 1L;

  private final WirePrecision precision;
  private final long maskSetId;
  private final String[] names;
  private final int[][] shapes;
  private final int[] counts;
  // the stream: fp32 values (FP32), or halves and block exponents (FP16)
  private final float[] fp32;
  private final short[] halves;
  private final byte[] exponents;

  private PackedWeights(
      WirePrecision precision,
      long maskSetId,
      String[] names,
      int[][] shapes,
      int[] counts,
      float[] fp32,
      short[] halves,
      byte[] exponents) {
    this.precision = precision;
    this.maskSetId = maskSetId;
    this.names = names;
    this.shapes = shapes;
    this.counts = counts;
    this.fp32 = fp32;
    this.halves = halves;
    this.exponents = exponents;
  }

  /**
   * Packs {@code names} of {@code weights} (fresh arrays: a broadcast may hold them while the
   * driver updates the weights in place).
   *
   * @param masks the masks of this step; every masked matrix among {@code names} is multiplied by
   *     its mask and sent as its kept entries only
   */
  public static PackedWeights pack(
      Map<String, HostTensor> weights,
      Map<String, HostTensor> maskValues,
      List<String> names,
      MaskSet masks,
      WirePrecision precision) {
    int n = names.size();
    String[] nm = names.toArray(String[]::new);
    int[][] shapes = new int[n][];
    int[] counts = new int[n];
    long[] offsets = new long[n + 1];
    for (int i = 0; i < n; i++) {
      HostTensor w = weights.get(nm[i]);
      if (w == null) {
        throw new IllegalArgumentException("packing weights: no tensor '" + nm[i] + "'");
      }
      shapes[i] = w.shape().clone();
      boolean masked = masks.masks(nm[i]);
      HostTensor m = masked ? maskValues.get(nm[i]) : null;
      if (masked && (m == null || m.numel() != w.numel())) {
        throw new IllegalArgumentException(
            "packing weights: mask of '" + nm[i] + "' missing or of " + "another size");
      }
      counts[i] = masked ? masks.kept(nm[i]) : w.numel();
      offsets[i + 1] = offsets[i] + counts[i];
    }
    if (offsets[n] > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException("more than 2^31 values to pack");
    }
    float[] stream = new float[(int) offsets[n]];
    ParallelLoops.forEach(
        n,
        i -> {
          float[] w = weights.get(nm[i]).data();
          int from = (int) offsets[i];
          if (masks.masks(nm[i])) {
            kept(w, maskValues.get(nm[i]).data(), stream, from, counts[i]);
          } else {
            System.arraycopy(w, 0, stream, from, w.length);
          }
        });
    if (precision == WirePrecision.FP32) {
      return new PackedWeights(precision, masks.id(), nm, shapes, counts, stream, null, null);
    }
    HalfBlocks.Encoded e = HalfBlocks.encodeParallel(stream);
    return new PackedWeights(
        precision, masks.id(), nm, shapes, counts, null, e.halves(), e.exponents());
  }

  /**
   * A stream selected elsewhere ({@link DevicePacking}): exactly one of {@code fp32} (FP32) and
   * {@code halves} (FP16) is given; the caller checked that the stream holds {@code counts}.
   */
  static PackedWeights ofStream(
      WirePrecision precision,
      long maskSetId,
      String[] names,
      int[][] shapes,
      int[] counts,
      float[] fp32,
      HalfBlocks.Encoded halves) {
    if ((precision == WirePrecision.FP32) != (fp32 != null) || (fp32 == null) == (halves == null)) {
      throw new IllegalArgumentException("packed stream does not match precision " + precision);
    }
    return halves == null
        ? new PackedWeights(precision, maskSetId, names, shapes, counts, fp32, null, null)
        : new PackedWeights(
            precision, maskSetId, names, shapes, counts, null, halves.halves(), halves.exponents());
  }

  /**
   * w * m at the entries whose mask is not zero, in order, into {@code out} from {@code from}:
   * exactly the non-structural entries of W * M. A compaction where every entry is written and kept
   * ones advance is several times faster than walking the bits; nothing is written past this
   * tensor's part of the stream (tensors are packed in parallel).
   */
  private static void kept(float[] w, float[] m, float[] out, int from, int count) {
    int k = from;
    int end = from + count;
    for (int j = 0; j < w.length; j++) {
      if (k < end) {
        out[k] = w[j] * m[j];
      }
      k += m[j] != 0f ? 1 : 0;
    }
    if (k != end) {
      throw new IllegalStateException(
          "mask values and bits disagree: " + (k - from) + " kept vs " + count);
    }
  }

  public WirePrecision precision() {
    return precision;
  }

  /** The mask set the masked tensors were packed against. */
  public long maskSetId() {
    return maskSetId;
  }

  public List<String> names() {
    return List.of(names);
  }

  /** Shape of tensor i (a copy). */
  public int[] shape(int i) {
    return shapes[i].clone();
  }

  /** Values in the stream: every tensor's kept entries. */
  public int streamLength() {
    return fp32 != null ? fp32.length : halves.length;
  }

  /** The stream in fp32 (FP32 precision), not a copy: do not modify. */
  public float[] fp32Stream() {
    return fp32;
  }

  /** The stream as block-scaled halves (FP16 precision), not a copy: do not modify. */
  public HalfBlocks.Encoded halfStream() {
    return halves == null ? null : new HalfBlocks.Encoded(halves, exponents);
  }

  /** Values on the wire (payload only, without names and shapes). */
  public long payloadBytes() {
    return fp32 != null ? 4L * fp32.length : HalfBlocks.bytes(halves.length);
  }

  /** Values packed per tensor (for tests and figures). */
  public List<Integer> packedCounts() {
    List<Integer> c = new ArrayList<>();
    for (int count : counts) {
      c.add(count);
    }
    return c;
  }
}
