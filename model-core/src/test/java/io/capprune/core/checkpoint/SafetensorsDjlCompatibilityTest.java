package io.capprune.core.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.checkpoint.Safetensors.Dtype;
import io.capprune.core.tensor.HalfPrecision;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.testing.TestModels;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * An independent reader (DJL's safetensors decoder) loads what our writer writes, value for value.
 */
class SafetensorsDjlCompatibilityTest {

  // Not BF16: DJL 0.35.1 with libtorch 2.7.1 aborts the whole JVM ("terminate called without an
  // active exception") on a BF16 safetensors entry, so BF16 is checked by HalfPrecisionTest only.
  @ParameterizedTest
  @EnumSource(names = {"F32", "F16"})
  void djlDecodesOurFiles(Dtype dtype) throws IOException {
    Random rnd = new Random(3);
    LinkedHashMap<String, HostTensor> in = new LinkedHashMap<>();
    in.put("bert.encoder.layer.0.attention.self.query.weight", TestModels.randomTensor(rnd, 6, 4));
    in.put("classifier.bias", TestModels.randomTensor(rnd, 3));
    in.put("odd", TestModels.randomTensor(rnd, 5));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Safetensors.write(out, in, Map.of("format", "pt"), dtype);
    try (NDManager manager = NDManager.newBaseManager()) {
      NDList list = NDList.decode(manager, new ByteArrayInputStream(out.toByteArray()));
      assertEquals(in.size(), list.size());
      for (NDArray a : list) {
        HostTensor expected = in.get(a.getName());
        assertArrayEquals(expected.shape(), toInts(a.getShape().getShape()), a.getName());
        float[] actual = a.toType(DataType.FLOAT32, false).toFloatArray();
        for (int i = 0; i < actual.length; i++) {
          float want =
              dtype == Dtype.F32
                  ? expected.data()[i]
                  : HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(expected.data()[i]));
          assertEquals(want, actual[i], 0f, a.getName() + "[" + i + "]");
        }
      }
    }
  }

  private static int[] toInts(long[] s) {
    int[] out = new int[s.length];
    for (int i = 0; i < s.length; i++) {
      out[i] = Math.toIntExact(s[i]);
    }
    return out;
  }
}
