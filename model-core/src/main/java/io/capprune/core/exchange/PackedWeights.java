package io.capprune.core.exchange;

import io.capprune.core.optim.ParallelLoops;
import io.capprune.core.tensor.HostTensor;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One step's effective weights W' = W * M as they travel to the executors: of a masked matrix only
 * the entries its mask keeps (the rest of W' is zero, and the executor already has the
 * {@link MaskSet}), every other tensor whole; in fp32, or in fp16 with a scale per block
 * ({@link HalfBlocks}). {@link #unpack} gives back dense tensors equal to W' (to fp16 rounding).
 */
public final class PackedWeights implements Serializable {
  private static final long serialVersionUID = 1L;

  private final WirePrecision precision;
  private final long maskSetId;
  private final String[] names;
  private final int[][] shapes;
  // per tensor: float[] (FP32) or HalfBlocks.Encoded parts (FP16)
  private final float[][] fp32;
  private final short[][] halves;
  private final byte[][] exponents;

  private PackedWeights(WirePrecision precision, long maskSetId, String[] names, int[][] shapes,
      float[][] fp32, short[][] halves, byte[][] exponents) {
    this.precision = precision;
    this.maskSetId = maskSetId;
    this.names = names;
    this.shapes = shapes;
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
  public static PackedWeights pack(Map<String, HostTensor> weights, Map<String, HostTensor> maskValues,
      List<String> names, MaskSet masks, WirePrecision precision) {
    int n = names.size();
    String[] nm = names.toArray(String[]::new);
    int[][] shapes = new int[n][];
    float[][] f = precision == WirePrecision.FP32 ? new float[n][] : null;
    short[][] h = precision == WirePrecision.FP16 ? new short[n][] : null;
    byte[][] x = precision == WirePrecision.FP16 ? new byte[n][] : null;
    ParallelLoops.forEach(n, i -> {
      HostTensor w = weights.get(nm[i]);
      if (w == null) {
        throw new IllegalArgumentException("packing weights: no tensor '" + nm[i] + "'");
      }
      shapes[i] = w.shape().clone();
      boolean masked = masks.masks(nm[i]);
      HostTensor m = masked ? maskValues.get(nm[i]) : null;
      if (masked && (m == null || m.numel() != w.numel())) {
        throw new IllegalArgumentException("packing weights: mask of '" + nm[i] + "' missing or of "
            + "another size");
      }
      if (f != null) {
        f[i] = masked ? kept(w.data(), m.data(), masks.bits(nm[i]), masks.kept(nm[i]))
            : w.data().clone();
      } else if (masked) {
        // gathered and encoded block by block: no full-size fp32 copy of the kept entries
        int count = masks.kept(nm[i]);
        h[i] = new short[count];
        x[i] = new byte[(count + HalfBlocks.BLOCK - 1) / HalfBlocks.BLOCK];
        keptHalves(w.data(), m.data(), masks.bits(nm[i]), h[i], x[i]);
      } else {
        HalfBlocks.Encoded e = HalfBlocks.encode(w.data());
        h[i] = e.halves();
        x[i] = e.exponents();
      }
    });
    return new PackedWeights(precision, masks.id(), nm, shapes, f, h, x);
  }

  /**
   * w * m at the entries whose mask is not zero, in order: exactly the non-structural entries of
   * W * M. Reads the mask values the bits were made from (the driver does not change them between
   * the two): a branch-free compaction is several times faster than walking the bits.
   */
  private static float[] kept(float[] w, float[] m, long[] bits, int count) {
    float[] out = new float[count + 1]; // one slot of slack: every entry is written, kept ones advance
    int k = 0;
    for (int j = 0; j < w.length; j++) {
      out[k] = w[j] * m[j];
      k += m[j] != 0f ? 1 : 0;
    }
    if (k != count) {
      throw new IllegalStateException("mask bits and count disagree: " + k + " vs " + count);
    }
    return Arrays.copyOf(out, count);
  }

  /** Like {@link #kept}, straight into block-scaled halves, one block at a time. */
  private static void keptHalves(float[] w, float[] m, long[] bits, short[] halves, byte[] exponents) {
    float[] block = new float[HalfBlocks.BLOCK + 1];
    int n = 0;
    int k = 0;
    int b = 0;
    for (int j = 0; j < w.length; j++) {
      block[n] = w[j] * m[j];
      n += m[j] != 0f ? 1 : 0;
      if (n == HalfBlocks.BLOCK) {
        exponents[b++] = HalfBlocks.encodeBlock(block, 0, n, halves, k);
        k += n;
        n = 0;
      }
    }
    if (n > 0) {
      if (k + n > halves.length) {
        throw new IllegalStateException("mask bits and count disagree: more than " + halves.length);
      }
      exponents[b++] = HalfBlocks.encodeBlock(block, 0, n, halves, k);
      k += n;
    }
    if (k != halves.length || b != exponents.length) {
      throw new IllegalStateException("mask bits and count disagree: " + k + " vs " + halves.length);
    }
  }

  public WirePrecision precision() {
    return precision;
  }

  public List<String> names() {
    return List.of(names);
  }

  /** The dense effective weights, in packing order. */
  public LinkedHashMap<String, HostTensor> unpack(MaskSet masks) {
    if (masks == null || masks.id() != maskSetId) {
      throw new IllegalStateException("weights packed against mask set " + maskSetId
          + " cannot be unpacked with " + (masks == null ? "no mask set" : "mask set " + masks.id()));
    }
    HostTensor[] out = new HostTensor[names.length];
    ParallelLoops.forEach(names.length, i -> {
      float[] values = fp32 != null ? fp32[i]
          : HalfBlocks.decode(new HalfBlocks.Encoded(halves[i], exponents[i]));
      int numel = (int) HostTensor.numel(shapes[i]);
      float[] dense;
      if (masks.masks(names[i])) {
        dense = new float[numel];
        long[] bits = masks.bits(names[i]);
        if (bits.length != (numel + 63) >>> 6 || values.length != masks.kept(names[i])) {
          throw new IllegalStateException("tensor " + names[i] + ": " + values.length
              + " packed values do not fit its mask");
        }
        int k = 0;
        for (int word = 0; word < bits.length; word++) {
          long b = bits[word];
          while (b != 0) {
            dense[(word << 6) + Long.numberOfTrailingZeros(b)] = values[k++];
            b &= b - 1;
          }
        }
      } else {
        // fp32 arrays are the broadcast's own: copy, since the caller may keep what it gets
        dense = fp32 != null ? values.clone() : values;
        if (dense.length != numel) {
          throw new IllegalStateException("tensor " + names[i] + ": " + dense.length
              + " values for shape of " + numel);
        }
      }
      out[i] = new HostTensor(shapes[i].clone(), dense);
    });
    LinkedHashMap<String, HostTensor> result = new LinkedHashMap<>();
    for (int i = 0; i < names.length; i++) {
      result.put(names[i], out[i]);
    }
    return result;
  }

  /** Values on the wire (payload only, without names and shapes). */
  public long payloadBytes() {
    long b = 0;
    for (int i = 0; i < names.length; i++) {
      b += fp32 != null ? 4L * fp32[i].length : HalfBlocks.bytes(halves[i].length);
    }
    return b;
  }

  /** Values packed per tensor (for tests and figures). */
  public List<Integer> packedCounts() {
    List<Integer> c = new ArrayList<>();
    for (int i = 0; i < names.length; i++) {
      c.add(fp32 != null ? fp32[i].length : halves[i].length);
    }
    return c;
  }
}
