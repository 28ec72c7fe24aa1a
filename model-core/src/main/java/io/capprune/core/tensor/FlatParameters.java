package io.capprune.core.tensor;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Trainable tensors as one flat float vector on a device, in a fixed order: tensor i occupies
 * [offset(i), offset(i) + numel(i)). Weights arrive in this layout from one upload, and a worker's
 * gradients leave in it, concatenated on the device: one copy each way, no host assembly.
 */
public final class FlatParameters {
  private final List<String> names;
  private final List<int[]> shapes;
  private final long[] offsets;
  private final NDArray values;

  /**
   * @param values [sum of numel] on the device, in the order of {@code names}
   */
  public FlatParameters(List<String> names, List<int[]> shapes, NDArray values) {
    if (names.size() != shapes.size()) {
      throw new IllegalArgumentException(names.size() + " names but " + shapes.size() + " shapes");
    }
    this.names = List.copyOf(names);
    this.shapes = new ArrayList<>();
    this.offsets = new long[names.size() + 1];
    for (int i = 0; i < names.size(); i++) {
      this.shapes.add(shapes.get(i).clone());
      offsets[i + 1] = offsets[i] + HostTensor.numel(shapes.get(i));
    }
    if (values.getShape().dimension() != 1 || values.getShape().get(0) != offsets[names.size()]) {
      throw new IllegalArgumentException(
          "flat parameters must be ["
              + offsets[names.size()]
              + "] for "
              + names.size()
              + " tensors, got "
              + values.getShape());
    }
    this.values = values;
  }

  /** Dense tensors from the heap, in the map's order, in one copy to the manager's device. */
  public static FlatParameters upload(NDManager manager, Map<String, HostTensor> tensors) {
    List<String> names = new ArrayList<>(tensors.keySet());
    List<int[]> shapes = new ArrayList<>();
    long total = 0;
    for (HostTensor t : tensors.values()) {
      shapes.add(t.shape());
      total += t.numel();
    }
    if (total > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException("more than 2^31 trainable values in one vector");
    }
    float[] flat = new float[(int) total];
    int o = 0;
    for (HostTensor t : tensors.values()) {
      System.arraycopy(t.data(), 0, flat, o, t.numel());
      o += t.numel();
    }
    return new FlatParameters(names, shapes, NDArrays.owned(manager.create(flat)));
  }

  public NDArray values() {
    return values;
  }

  public List<String> names() {
    return names;
  }

  public long size() {
    return offsets[names.size()];
  }

  /** Each tensor as a reshaped slice (a view) of {@link #values()}, attached to {@code manager}. */
  public Map<String, NDArray> views(NDManager manager) {
    Map<String, NDArray> out = new LinkedHashMap<>();
    for (int i = 0; i < names.size(); i++) {
      out.put(
          names.get(i),
          values
              .get(manager, new NDIndex().addSliceDim(offsets[i], offsets[i + 1]))
              .reshape(new Shape(NDArrays.toLongs(shapes.get(i)))));
    }
    return out;
  }

  /** A flat host array in this layout, cut into named arrays (copies). */
  public Map<String, float[]> split(float[] flat) {
    if (flat.length != size()) {
      throw new IllegalArgumentException(
          "flat array of " + flat.length + " values, layout has " + size());
    }
    Map<String, float[]> out = new LinkedHashMap<>();
    for (int i = 0; i < names.size(); i++) {
      out.put(
          names.get(i), java.util.Arrays.copyOfRange(flat, (int) offsets[i], (int) offsets[i + 1]));
    }
    return out;
  }
}
