package io.capprune.core.exchange;

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
    long[] padded = new long[names.size()];
    long total = 0;
    try (NDManager m = first.getManager().newSubManager()) {
      NDList parts = new NDList();
      for (int i = 0; i < names.size(); i++) {
        NDArray mask = masks.get(names.get(i));
        long n = mask.size();
        padded[i] = (n + 63) / 64 * 64;
        parts.add(mask.reshape(n));
        if (padded[i] > n) {
          NDArray pad = m.zeros(new Shape(padded[i] - n), mask.getDataType(), mask.getDevice());
          parts.add(pad);
        }
        total += padded[i];
      }
      NDArray all = parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts);
      all.attach(m);
      // bit j of byte b = entry 8b + j; little-endian longs of these bytes are MaskSet's words
      NDArray weights =
          m.create(new int[] {1, 2, 4, 8, 16, 32, 64, 128})
              .toType(DataType.UINT8, false)
              .toDevice(all.getDevice(), false)
              .reshape(1, 8);
      NDArray keep =
          all.neq(m.full(new Shape(), 0f, all.getDataType(), all.getDevice()))
              .toType(DataType.UINT8, false);
      keep.attach(m);
      NDArray bytes =
          keep.reshape(total / 8, 8).mul(weights).sum(new int[] {1}).toType(DataType.UINT8, false);
      bytes.attach(m);
      LinkedHashMap<String, long[]> bits = new LinkedHashMap<>();
      // through a host buffer kept between steps (DJL's own copy allocates a fresh one)
      HostStaging.read(
          bytes,
          buf -> {
            LongBuffer words = buf.order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
            for (int i = 0; i < names.size(); i++) {
              long[] w = new long[(int) (padded[i] / 64)];
              words.get(w);
              bits.put(names.get(i), w);
            }
          });
      return MaskSet.ofBits(bits);
    }
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
