package io.capprune.core.exchange;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.tensor.FlatParameters;
import io.capprune.core.tensor.HostBuffer;
import io.capprune.core.tensor.HostCopy;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * A worker's side of the weight exchange, kept on its device across steps: each step's {@link
 * PackedWeights} stream is uploaded once, in the wire precision, decoded on the device and
 * scattered into a zero vector at the entries the masks keep. The keep pattern is built on the
 * device from the {@link MaskSet}'s bits (1/32 of the values) and kept until the masks change.
 *
 * <p>Not thread-safe: one per worker, used under the worker's lock.
 */
public final class DeviceWeights implements AutoCloseable {
  private final NDManager manager;
  private List<String> names;
  private List<int[]> shapes;
  private long size;
  private NDArray real;
  private long keepFor = Long.MIN_VALUE;
  private NDArray keep;
  private NDArray bitValues;
  // the step's wire bytes and the mask bits go up through it (page-locked on a GPU)
  private final HostBuffer staging;

  private DeviceWeights(NDManager manager) {
    this.manager = manager;
    this.staging = new HostBuffer(manager.getDevice());
  }

  /** Resident state in a sub-manager of {@code parent}, on its device. */
  public static DeviceWeights on(NDManager parent) {
    return new DeviceWeights(parent.newSubManager());
  }

  /**
   * This step's effective weights W' = W * M as one flat float32 vector attached to {@code step}.
   *
   * @param masks the mask set {@code packed} was packed against
   */
  public FlatParameters unpack(PackedWeights packed, MaskSet masks, NDManager step) {
    if (masks == null || masks.id() != packed.maskSetId()) {
      throw new IllegalStateException(
          "weights packed against mask set "
              + packed.maskSetId()
              + " cannot be unpacked with "
              + (masks == null ? "no mask set" : "mask set " + masks.id()));
    }
    layout(packed);
    int k = packed.streamLength();
    // the keep pattern first: both go up through the staging buffer, and on the CPU the values
    // are a view of it
    if (k != size && keepFor != masks.id()) {
      rebuildKeep(masks);
    }
    NDArray values = upload(packed, step);
    if (k == size) {
      // nothing masked away: the stream is the vector
      return new FlatParameters(names, shapes, NDArrays.owned(values));
    }
    NDArray flat = step.zeros(new Shape(size), DataType.FLOAT32);
    flat.set(new NDIndex().addBooleanIndex(keep), values);
    return new FlatParameters(names, shapes, flat);
  }

  private void layout(PackedWeights packed) {
    List<String> n = packed.names();
    if (n.equals(names)) {
      boolean same = true;
      for (int i = 0; same && i < n.size(); i++) {
        same = java.util.Arrays.equals(shapes.get(i), packed.shape(i));
      }
      if (same) {
        return;
      }
    }
    names = n;
    shapes = new ArrayList<>();
    size = 0;
    for (int i = 0; i < n.size(); i++) {
      shapes.add(packed.shape(i));
      size += HostTensor.numel(packed.shape(i));
    }
    keepFor = Long.MIN_VALUE;
    if (real != null) {
      real.close();
    }
    // which bits of the word-aligned bit stream are entries (the rest pads a tensor to 64 bits)
    long[] words = new long[wordCount()];
    int w = 0;
    for (int[] shape : shapes) {
      w = allEntries((int) HostTensor.numel(shape), words, w);
    }
    real = unpackBits(words);
  }

  private int wordCount() {
    long w = 0;
    for (int[] shape : shapes) {
      w += (HostTensor.numel(shape) + 63) >>> 6;
    }
    return Math.toIntExact(w);
  }

  /** The packed stream on the device as float32, in one upload of the wire bytes. */
  private NDArray upload(PackedWeights packed, NDManager step) {
    int k = packed.streamLength();
    if (packed.precision() == WirePrecision.FP32) {
      ByteBuffer b = staging.get(4L * k);
      HostCopy.put(packed.fp32Stream(), b);
      return step.create(b, new Shape(k), DataType.FLOAT32);
    }
    HalfBlocks.Encoded e = packed.halfStream();
    return HalfBlocks.decode(e, step, staging.get(HalfBlocks.stagingBytes(k)));
  }

  /** The keep pattern of a new mask set: mask bits for masked tensors, all entries of the rest. */
  private void rebuildKeep(MaskSet masks) {
    long[] words = new long[wordCount()];
    int w = 0;
    for (int i = 0; i < names.size(); i++) {
      int numel = (int) HostTensor.numel(shapes.get(i));
      int count = (numel + 63) >>> 6;
      if (masks.masks(names.get(i))) {
        long[] bits = masks.bits(names.get(i));
        if (bits.length != count) {
          throw new IllegalStateException(
              "tensor "
                  + names.get(i)
                  + ": mask of "
                  + bits.length
                  + " words for "
                  + numel
                  + " entries");
        }
        System.arraycopy(bits, 0, words, w, count);
        w += count;
      } else {
        w = allEntries(numel, words, w);
      }
    }
    if (keep != null) {
      keep.close();
    }
    try (NDArray all = unpackBits(words)) {
      keep = all.booleanMask(real);
    }
    keep.attach(manager);
    keepFor = masks.id();
  }

  /** Sets the bits of {@code numel} entries from word {@code from}; returns the next word. */
  private static int allEntries(int numel, long[] words, int from) {
    int w = from;
    for (int j = 0; j < numel; j += 64) {
      words[w++] = numel - j >= 64 ? -1L : (1L << (numel - j)) - 1;
    }
    return w;
  }

  /** Bit j of word i (little-endian) as element 64 i + j of a boolean vector on the device. */
  private NDArray unpackBits(long[] words) {
    if (bitValues == null) {
      bitValues = manager.create(new float[] {1, 2, 4, 8, 16, 32, 64, 128}, new Shape(1, 8));
      bitValues = NDArrays.owned(bitValues);
    }
    ByteBuffer b = staging.get(8L * words.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asLongBuffer().put(words);
    try (NDManager scratch = manager.newSubManager()) {
      // signed bytes: floor(v / 2^j) mod 2 is bit j of the two's complement byte
      NDArray bytes = scratch.create(b, new Shape(8L * words.length), DataType.INT8);
      NDArray bits =
          bytes
              .toType(DataType.FLOAT32, false)
              .reshape(8L * words.length, 1)
              .div(bitValues)
              .floor()
              .mod(2f)
              .eq(1f)
              .reshape(64L * words.length);
      NDArray kept = NDArrays.owned(bits);
      kept.attach(manager);
      return kept;
    }
  }

  @Override
  public void close() {
    manager.close();
    staging.close();
  }
}
