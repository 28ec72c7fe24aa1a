package io.capprune.core.tensor;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A fixed order of named tensors: tensor i occupies [offset(i), offset(i) + numel(i)) of one flat
 * float vector. Gradients travel as one flat array in it (one buffer to aggregate, no per-tensor
 * objects on the wire) and are cut back into tensors on the driver; {@link FlatParameters} holds a
 * device's weights in it.
 */
public final class ParameterLayout implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String[] names;
  private final int[][] shapes;
  private final int[] offsets;
  private final int size;

  private ParameterLayout(String[] names, int[][] shapes) {
    this.names = names;
    this.shapes = shapes;
    this.offsets = new int[names.length];
    long total = 0;
    for (int i = 0; i < names.length; i++) {
      offsets[i] = (int) total;
      total += HostTensor.numel(shapes[i]);
      if (total > Integer.MAX_VALUE - 16) {
        throw new IllegalArgumentException("more than 2^31 trainable elements: cannot flatten");
      }
    }
    this.size = (int) total;
  }

  /** The layout of tensors {@code names} with {@code shapes}, in that order. */
  public static ParameterLayout of(List<String> names, List<int[]> shapes) {
    if (names.size() != shapes.size()) {
      throw new IllegalArgumentException(names.size() + " names but " + shapes.size() + " shapes");
    }
    int[][] s = new int[shapes.size()][];
    for (int i = 0; i < s.length; i++) {
      s[i] = shapes.get(i).clone();
    }
    return new ParameterLayout(names.toArray(String[]::new), s);
  }

  /** The layout of {@code tensors} in their iteration order. */
  public static ParameterLayout of(Map<String, HostTensor> tensors) {
    String[] n = new String[tensors.size()];
    int[][] s = new int[tensors.size()][];
    int i = 0;
    for (Map.Entry<String, HostTensor> e : tensors.entrySet()) {
      n[i] = e.getKey();
      s[i] = e.getValue().shape().clone();
      i++;
    }
    return new ParameterLayout(n, s);
  }

  public int size() {
    return size;
  }

  public int count() {
    return names.length;
  }

  public String name(int i) {
    return names[i];
  }

  public int[] shape(int i) {
    return shapes[i].clone();
  }

  public int offset(int i) {
    return offsets[i];
  }

  public int numel(int i) {
    return (int) HostTensor.numel(shapes[i]);
  }

  public List<String> names() {
    return List.of(names);
  }

  /** Copies named arrays into one flat array; every name of the layout must be present. */
  public float[] flatten(Map<String, float[]> values) {
    float[] flat = new float[size];
    for (int i = 0; i < names.length; i++) {
      float[] v = values.get(names[i]);
      if (v == null || v.length != numel(i)) {
        throw new IllegalArgumentException(
            "tensor "
                + names[i]
                + ": expected "
                + numel(i)
                + " values, got "
                + (v == null ? "none" : v.length));
      }
      System.arraycopy(v, 0, flat, offsets[i], v.length);
    }
    return flat;
  }

  /** Cuts a flat array back into named tensors (copies). */
  public Map<String, HostTensor> unflatten(float[] flat) {
    if (flat.length != size) {
      throw new IllegalArgumentException(
          "flat array of " + flat.length + " values, layout has " + size);
    }
    Map<String, HostTensor> out = new LinkedHashMap<>();
    for (int i = 0; i < names.length; i++) {
      out.put(
          names[i],
          new HostTensor(
              shapes[i].clone(), Arrays.copyOfRange(flat, offsets[i], offsets[i] + numel(i))));
    }
    return out;
  }

  /** The sub-layout of the given names, in this layout's order. */
  public ParameterLayout select(java.util.Set<String> keep) {
    List<String> n = new ArrayList<>();
    List<int[]> s = new ArrayList<>();
    for (int i = 0; i < names.length; i++) {
      if (keep.contains(names[i])) {
        n.add(names[i]);
        s.add(shapes[i]);
      }
    }
    return new ParameterLayout(n.toArray(String[]::new), s.toArray(int[][]::new));
  }
}
