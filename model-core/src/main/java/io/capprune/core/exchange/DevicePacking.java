package io.capprune.core.exchange;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.tensor.HostStaging;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * The broadcast of a step built from arrays on a device (the driver's GPU, or its CPU through the
 * same engine): the mask bits are computed there and come back in one download of 1/8 byte per
 * entry, and the packed stream is selected there ({@code booleanMask}) and comes back in one
 * download (fp32, or fp16 through {@link HalfBlocks#encode(NDArray)}). Gives the same {@link
 * MaskSet} bits and the same {@link PackedWeights} stream as the host packers.
 */
public final class DevicePacking {

  private DevicePacking() {}

  /**
   * The mask set of these masks: {@code masks.get(name)} is a flat float array on the device, an
   * entry is kept iff it is not zero (as {@link MaskSet#of}).
   */
  public static MaskSet maskSet(LinkedHashMap<String, NDArray> masks) {
    if (masks.isEmpty()) {
      return MaskSet.none();
    }
    NDArray first = masks.values().iterator().next();
    List<String> names = List.copyOf(masks.keySet());
    try (NDManager m = first.getManager().newSubManager()) {
      NDList parts = new NDList();
      long total = 0;
      long[] words = new long[names.size()];
      for (int i = 0; i < words.length; i++) {
        NDArray mask = masks.get(names.get(i));
        long n = mask.size();
        words[i] = words(n);
        long padded = words[i] * 64;
        parts.add(mask.reshape(n));
        if (padded > n) {
          parts.add(m.zeros(new Shape(padded - n), mask.getDataType(), mask.getDevice()));
        }
        total += padded;
      }
      NDArray all = parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts);
      all.attach(m);
      NDArray keep = all.neq(m.full(new Shape(), 0f, all.getDataType(), all.getDevice()));
      keep.attach(m);
      // one row of whole words: the tensors' padded bits back to back, in names order
      NDArray bytes = bitRows(keep.reshape(1, total));
      bytes.attach(m);
      return readBits(List.of(bytes), names, words, names);
    }
  }

  /**
   * Queues the mask bits of masks given as the rows of a boolean (b, n) array: a uint8 (b, 8 *
   * ceil(n / 64)) array whose row r holds bit j of byte i = entry 8i + j of row r, padded with zero
   * bits to whole 64-bit words, so that each row's little-endian longs are {@link MaskSet}'s words
   * for that mask. Nothing is read; the result is attached to {@code keep}'s manager.
   */
  public static NDArray bitRows(NDArray keep) {
    long b = keep.getShape().get(0);
    long n = keep.getShape().get(1);
    long padded = words(n) * 64;
    NDManager owner = keep.getManager();
    try (NDManager m = owner.newSubManager()) {
      NDArray u = keep.toType(DataType.UINT8, false);
      u.attach(m);
      if (padded > n) {
        u = u.concat(m.zeros(new Shape(b, padded - n), DataType.UINT8, keep.getDevice()), 1);
        u.attach(m);
      }
      // 1, 2, 4, ..., 128 made on the device (products of powers of two are exact): a copy from
      // the heap would wait there for every kernel queued before it, twice a step
      Device d = keep.getDevice();
      NDArray weights =
          m.ones(new Shape(1), DataType.FLOAT32, d)
              .concat(m.full(new Shape(7), 2f, DataType.FLOAT32, d))
              .cumProd(0)
              .toType(DataType.UINT8, false)
              .reshape(1, 8);
      weights.attach(m);
      NDArray bytes =
          u.reshape(b * padded / 8, 8)
              .mul(weights)
              .sum(new int[] {1})
              .toType(DataType.UINT8, false)
              .reshape(b, padded / 8);
      bytes.attach(owner);
      return bytes;
    }
  }

  /**
   * {@link #readBits(List, List, long[], List)} for arrays made by {@link #bitRows}: each row is
   * one mask's words, named in {@code names} row by row across the arrays.
   */
  public static MaskSet readBitRows(List<NDArray> arrays, List<String> names, List<String> order) {
    long[] words = new long[names.size()];
    int at = 0;
    for (NDArray a : arrays) {
      for (long row = 0; row < a.getShape().get(0); row++) {
        if (at == words.length) {
          throw new IllegalArgumentException(
              "more rows of mask bits than the " + names.size() + " names");
        }
        words[at++] = a.getShape().get(1) / 8;
      }
    }
    if (at != words.length) {
      throw new IllegalArgumentException(at + " rows of mask bits for " + names.size() + " names");
    }
    return readBits(arrays, names, words, order);
  }

  /**
   * The mask set from mask bytes on the device, read in one copy: {@code arrays}, flattened and
   * concatenated, hold the whole 64-bit words of {@code names}' masks back to back ({@code
   * words[i]} words for {@code names.get(i)}: rows of {@link #bitRows}); the set lists them in
   * {@code order} (the same names).
   */
  public static MaskSet readBits(
      List<NDArray> arrays, List<String> names, long[] words, List<String> order) {
    long total = 0;
    for (long w : words) {
      total += w;
    }
    long bytes = 0;
    for (NDArray a : arrays) {
      bytes += a.size();
    }
    if (names.size() != words.length || bytes != total * 8) {
      throw new IllegalArgumentException(
          bytes + " bytes of mask bits for " + names.size() + " masks of " + total + " words");
    }
    long[][] rows = new long[names.size()][];
    for (int i = 0; i < rows.length; i++) {
      rows[i] = new long[(int) words[i]];
    }
    try (NDManager m = arrays.get(0).getManager().newSubManager()) {
      NDList flat = new NDList();
      for (NDArray a : arrays) {
        NDArray f = a.reshape(a.size());
        f.attach(m);
        flat.add(f);
      }
      NDArray all = flat.size() == 1 ? flat.get(0) : NDArrays.concat(flat);
      all.attach(m);
      // through a host buffer kept between steps (DJL's own copy allocates a fresh one)
      HostStaging.read(
          all,
          buf -> {
            LongBuffer in = buf.order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
            for (long[] w : rows) {
              in.get(w);
            }
          });
    }
    LinkedHashMap<String, long[]> byName = new LinkedHashMap<>();
    for (int i = 0; i < rows.length; i++) {
      byName.put(names.get(i), rows[i]);
    }
    LinkedHashMap<String, long[]> bits = new LinkedHashMap<>();
    for (String name : order) {
      long[] w = byName.get(name);
      if (w == null) {
        throw new IllegalArgumentException("no mask bits for '" + name + "'");
      }
      bits.put(name, w);
    }
    return MaskSet.ofBits(bits);
  }

  private static long words(long n) {
    return (n + 63) / 64;
  }

  /**
   * Packs {@code names} from one flat vector on the device that holds them in this order.
   *
   * @param values the tensors' values, concatenated in {@code names} order: W * M for the tensors
   *     {@code masks} masks, W for the others
   * @param keep a boolean vector of the same length: the entries to send (the mask's non-zero
   *     entries for masked tensors, every entry of the others)
   */
  public static PackedWeights pack(
      List<String> names,
      List<int[]> shapes,
      NDArray values,
      NDArray keep,
      MaskSet masks,
      WirePrecision precision) {
    int n = names.size();
    String[] nm = names.toArray(String[]::new);
    int[][] sh = new int[n][];
    int[] counts = new int[n];
    long total = 0;
    long numel = 0;
    for (int i = 0; i < n; i++) {
      sh[i] = shapes.get(i).clone();
      long size = io.capprune.core.tensor.HostTensor.numel(sh[i]);
      counts[i] = masks.masks(nm[i]) ? masks.kept(nm[i]) : (int) size;
      total += counts[i];
      numel += size;
    }
    if (values.size() != numel || keep.size() != numel) {
      throw new IllegalArgumentException(
          "packing weights: "
              + values.size()
              + " values and "
              + keep.size()
              + " keep flags for tensors of "
              + numel
              + " entries");
    }
    if (total > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException("more than 2^31 values to pack");
    }
    try (NDManager m = values.getManager().newSubManager()) {
      NDArray stream = values.booleanMask(keep);
      stream.attach(m);
      if (stream.size() != total) {
        throw new IllegalStateException(
            "mask values and bits disagree: " + stream.size() + " kept vs " + total);
      }
      if (precision == WirePrecision.FP32) {
        return PackedWeights.ofStream(
            precision,
            masks.id(),
            nm,
            sh,
            counts,
            io.capprune.core.tensor.NDArrays.download(stream),
            null);
      }
      return PackedWeights.ofStream(
          precision, masks.id(), nm, sh, counts, null, HalfBlocks.encode(stream));
    }
  }
}
