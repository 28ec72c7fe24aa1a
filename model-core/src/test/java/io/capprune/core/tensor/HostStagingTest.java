package io.capprune.core.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bert.DjlRuntime;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The kept host buffer gives each read its own values, whatever the sizes and types before it. */
class HostStagingTest {

  @Test
  void stagedReadsMatchTheDirectViewAcrossSizesTypesAndShapes() {
    DjlRuntime.start(1);
    SplittableRandom rng = new SplittableRandom(11);
    try (NDManager m = NDManager.newBaseManager()) {
      // grow, shrink (a view of the front), grow again; two data types; a 2-D array
      for (int n : new int[] {10, 4, 37, 37, 1}) {
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
          values[i] = (float) rng.nextGaussian();
        }
        NDArray a = m.create(values);
        float[] staged = new float[n];
        HostStaging.read(a, buf -> buf.asFloatBuffer().get(staged), true);
        assertArrayEquals(values, staged, "float32, " + n + " values");

        NDArray half = a.toType(DataType.FLOAT16, false);
        short[] direct = new short[n];
        short[] viaBuffer = new short[n];
        HostStaging.read(half, buf -> buf.asShortBuffer().get(direct), false);
        HostStaging.read(half, buf -> buf.asShortBuffer().get(viaBuffer), true);
        assertArrayEquals(direct, viaBuffer, "float16, " + n + " values");
      }
      float[] grid = {1, 2, 3, 4, 5, 6};
      NDArray twoD = m.create(grid, new Shape(2, 3));
      float[] out = new float[6];
      HostStaging.read(twoD, buf -> buf.asFloatBuffer().get(out), true);
      assertArrayEquals(grid, out);
      // the float path the worker uses for fp32 gradients
      assertArrayEquals(grid, NDArrays.download(twoD));
    }
  }
}
