package io.capprune.core.checkpoint;

import io.capprune.core.tensor.HostTensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Hand-made safetensors bytes and checkpoint directories for the tests (random checkpoints come
 * from {@link io.capprune.core.testing.TestModels}).
 */
final class TinyCheckpoints {

  private TinyCheckpoints() {}

  /** The raw bytes of a safetensors file with the given header text and data section. */
  static byte[] file(String header, byte[] data) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    return file(h.length, h, data);
  }

  static byte[] file(long declaredHeaderLength, byte[] header, byte[] data) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(
        ByteBuffer.allocate(8)
            .order(ByteOrder.LITTLE_ENDIAN)
            .putLong(declaredHeaderLength)
            .array());
    out.writeBytes(header);
    out.writeBytes(data);
    return out.toByteArray();
  }

  static byte[] floats(float... v) {
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float f : v) {
      b.putFloat(f);
    }
    return b.array();
  }

  /**
   * A checkpoint directory written file by file, bypassing HfCheckpoint's checks, so tests can
   * build broken ones.
   */
  static void writeDir(
      Path dir, String configJson, Map<String, HostTensor> fileTensors, List<String> vocab)
      throws IOException {
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("config.json"), configJson);
    Safetensors.write(
        dir.resolve("model.safetensors"),
        fileTensors,
        Map.of("format", "pt"),
        Safetensors.Dtype.F32);
    if (vocab != null) {
      Files.write(dir.resolve("vocab.txt"), vocab);
    }
  }

  /**
   * The tensors of {@code ckpt} under the names Hugging Face's BertForSequenceClassification
   * stores.
   */
  static LinkedHashMap<String, HostTensor> exported(HfCheckpoint ckpt) {
    LinkedHashMap<String, HostTensor> m = new LinkedHashMap<>();
    ckpt.tensors().forEach((n, t) -> m.put(BertTensorNames.exported(n), t));
    return m;
  }
}
