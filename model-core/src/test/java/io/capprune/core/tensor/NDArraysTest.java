package io.capprune.core.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bert.DjlRuntime;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class NDArraysTest {

  @BeforeAll
  static void engine() {
    DjlRuntime.start(2);
  }

  @Test
  void roundTripsFloat32AndFloat64KeepingShapeValuesAndOrder() {
    HostTensor a = new HostTensor(new int[] {2, 3}, new float[] {1, -2, 3.5f, 0, 1e-8f, 7});
    HostTensor b = new HostTensor(new int[] {4}, new float[] {0.1f, 0.2f, 0.3f, 0.4f});
    Map<String, HostTensor> in = new LinkedHashMap<>();
    in.put("z.weight", a);
    in.put("a.bias", b);
    try (NDManager m = NDManager.newBaseManager()) {
      for (DataType dt : new DataType[] {DataType.FLOAT32, DataType.FLOAT64}) {
        Map<String, NDArray> arrays = NDArrays.toNDArrays(m, in, dt);
        assertEquals(List.of("z.weight", "a.bias"), List.copyOf(arrays.keySet()));
        assertEquals(new Shape(2, 3), arrays.get("z.weight").getShape());
        assertEquals(dt, arrays.get("a.bias").getDataType());
        // float64 holds exactly the float32 values (widening, not parsing)
        assertEquals(
            (double) 0.1f, arrays.get("a.bias").toType(DataType.FLOAT64, false).getDouble(0));
        Map<String, HostTensor> back = NDArrays.toHost(arrays);
        assertArrayEquals(a.shape(), back.get("z.weight").shape());
        assertArrayEquals(a.data(), back.get("z.weight").data(), 0f);
        assertArrayEquals(b.data(), back.get("a.bias").data(), 0f);
      }
    }
  }

  @Test
  void scalarIsZeroDimOfTheRequestedType() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray s = NDArrays.scalar(m, Math.sqrt(8), DataType.FLOAT64);
      assertEquals(new Shape(), s.getShape());
      assertEquals(DataType.FLOAT64, s.getDataType());
      assertEquals(Math.sqrt(8), s.getDouble(), 1e-6);
    }
  }

  @Test
  void integerArraysAreRejectedWithTheTensorName() {
    try (NDManager m = NDManager.newBaseManager()) {
      Map<String, NDArray> arrays = Map.of("ids", m.create(new long[] {1, 2}));
      var e = assertThrows(IllegalArgumentException.class, () -> NDArrays.toHost(arrays));
      assertEquals(
          "tensor 'ids': cannot copy a int64 array to a float32 HostTensor", e.getMessage());
      var e2 =
          assertThrows(
              IllegalArgumentException.class,
              () -> NDArrays.toNDArray(m, HostTensor.zeros(2), DataType.INT32));
      assertEquals(
          "unsupported parameter data type int32 (supported: float32, float64, float16)",
          e2.getMessage());
      // refused with a message, before DJL's JNI could abort the JVM on a bfloat16 tensor
      var e3 =
          assertThrows(
              IllegalArgumentException.class,
              () -> NDArrays.toNDArray(m, HostTensor.zeros(2), DataType.BFLOAT16));
      assertEquals(NDArrays.BFLOAT16_UNSUPPORTED, e3.getMessage());
    }
  }

  @Test
  void whereExpandsZeroDimOperandsToTheCondition() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray condition = m.create(new boolean[] {true, false, true, false});
      NDArray x = m.create(new float[] {1, 2, 3, 4});
      NDArray picked = NDArrays.where(condition, NDArrays.scalar(m, -1, DataType.FLOAT32), x);
      assertEquals(new Shape(4), picked.getShape());
      assertArrayEquals(new float[] {-1, 2, -1, 4}, picked.toFloatArray());
      assertArrayEquals(
          new float[] {1, 7, 3, 7},
          NDArrays.where(condition, x, NDArrays.scalar(m, 7, DataType.FLOAT32)).toFloatArray());
      NDArray matrix = m.create(new boolean[] {true, false, false, true}, new Shape(2, 2));
      assertArrayEquals(
          new float[] {5, 0, 0, 5},
          NDArrays.where(
                  matrix,
                  NDArrays.scalar(m, 5, DataType.FLOAT32),
                  NDArrays.scalar(m, 0, DataType.FLOAT32))
              .toFloatArray());
    }
  }
}
