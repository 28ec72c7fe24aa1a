package io.capprune.core.tensor;

import java.util.Arrays;

/**
 * A dense float32 tensor on the Java heap, row-major. This is how parameters, gradients, scores,
 * masks and optimizer moments live on the driver and travel between driver and executors: plain
 * arrays, no native memory, trivially serialisable.
 */
public record HostTensor(int[] shape, float[] data) implements java.io.Serializable {

  public HostTensor {
    if (shape == null || data == null) {
      throw new IllegalArgumentException("shape and data must not be null");
    }
    long n = numel(shape);
    if (n != data.length) {
      throw new IllegalArgumentException(
          "shape "
              + Arrays.toString(shape)
              + " holds "
              + n
              + " elements but data has "
              + data.length);
    }
  }

  public static HostTensor zeros(int... shape) {
    return new HostTensor(shape.clone(), new float[Math.toIntExact(numel(shape))]);
  }

  public static long numel(int[] shape) {
    long n = 1;
    for (int d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
      }
      n *= d;
    }
    return n;
  }

  public int numel() {
    return data.length;
  }

  public int rank() {
    return shape.length;
  }

  public HostTensor copy() {
    return new HostTensor(shape.clone(), data.clone());
  }

  public boolean sameShape(HostTensor other) {
    return Arrays.equals(shape, other.shape);
  }

  public long countZeros() {
    long z = 0;
    for (float v : data) {
      if (v == 0f) {
        z++;
      }
    }
    return z;
  }

  @Override
  public String toString() {
    return "HostTensor" + Arrays.toString(shape);
  }
}
