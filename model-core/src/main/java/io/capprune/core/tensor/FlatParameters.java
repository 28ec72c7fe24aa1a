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
  private final ParameterLayout layout;
  private final NDArray values;

  /**
   * @param values [sum of numel] on the device, in the order of {@code names}
   */
  public FlatParameters(List<String> names, List<int[]> shapes, NDArray values) {
    this.layout = ParameterLayout.of(names, shapes);
    if (values.getShape().dimension() != 1 || values.getShape().get(0) != layout.size()) {
      throw new IllegalArgumentException(
          "flat parameters must be ["
              + layout.size()
              + "] for "
              + layout.count()
              + " tensors, got "
              + values.getShape());
    }
    this.values = values;
  }

  /** Dense tensors from the heap, in the map's order, in one copy to the manager's device. */
  public static FlatParameters upload(NDManager manager, Map<String, HostTensor> tensors) {
    ParameterLayout layout = ParameterLayout.of(tensors);
    Map<String, float[]> data = new LinkedHashMap<>();
    tensors.forEach((name, t) -> data.put(name, t.data()));
    List<int[]> shapes = new ArrayList<>();
    for (int i = 0; i < layout.count(); i++) {
      shapes.add(layout.shape(i));
    }
    return new FlatParameters(
        layout.names(), shapes, NDArrays.owned(manager.create(layout.flatten(data))));
  }

  public NDArray values() {
    return values;
  }

  public List<String> names() {
    return layout.names();
  }

  public ParameterLayout layout() {
    return layout;
  }

  public long size() {
    return layout.size();
  }

  /** Each tensor as a reshaped slice (a view) of {@link #values()}, attached to {@code manager}. */
  public Map<String, NDArray> views(NDManager manager) {
    Map<String, NDArray> out = new LinkedHashMap<>();
    for (int i = 0; i < layout.count(); i++) {
      long from = layout.offset(i);
      out.put(
          layout.name(i),
          values
              .get(manager, new NDIndex().addSliceDim(from, from + layout.numel(i)))
              .reshape(new Shape(NDArrays.toLongs(layout.shape(i)))));
    }
    return out;
  }
}
