package io.capprune.core.checkpoint;

import io.capprune.core.tensor.HostTensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Small random BERT checkpoints and hand-made safetensors bytes for the tests. */
final class TinyCheckpoints {

  private TinyCheckpoints() {}

  /** 2 layers, hidden 8, 2 heads, FFN 16, vocabulary 20, 3 labels. */
  static BertConfig config() {
    return new BertConfig("bert", 20, 8, 2, 2, 16, "gelu", 0.1f, 0.1f, 16, 2, 1e-12f, 3, List.of());
  }

  static HfCheckpoint random(BertConfig config, long seed, boolean pooler, boolean classifier) {
    Random rnd = new Random(seed);
    LinkedHashMap<String, HostTensor> t = new LinkedHashMap<>();
    BertTensorNames.required(config).forEach((n, s) -> t.put(n, randomTensor(rnd, s)));
    if (pooler) {
      BertTensorNames.pooler(config).forEach((n, s) -> t.put(n, randomTensor(rnd, s)));
    }
    if (classifier) {
      BertTensorNames.classifier(config).forEach((n, s) -> t.put(n, randomTensor(rnd, s)));
    }
    return new HfCheckpoint("tiny", config, t, vocab(config.vocabSize()));
  }

  static List<String> vocab(int n) {
    List<String> v = new ArrayList<>(List.of("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"));
    for (int i = v.size(); i < n; i++) {
      v.add(i % 2 == 0 ? "tok" + i : "##p" + i);
    }
    return v;
  }

  static HostTensor randomTensor(Random rnd, int... shape) {
    HostTensor t = HostTensor.zeros(shape);
    for (int i = 0; i < t.data().length; i++) {
      t.data()[i] = (float) rnd.nextGaussian() * 0.5f;
    }
    return t;
  }

  /** The raw bytes of a safetensors file with the given header text and data section. */
  static byte[] file(String header, byte[] data) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    return file(h.length, h, data);
  }

  static byte[] file(long declaredHeaderLength, byte[] header, byte[] data) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(declaredHeaderLength).array());
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
  static void writeDir(Path dir, String configJson, Map<String, HostTensor> fileTensors, List<String> vocab)
      throws IOException {
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("config.json"), configJson);
    Safetensors.write(dir.resolve("model.safetensors"), fileTensors, Map.of("format", "pt"),
        Safetensors.Dtype.F32);
    if (vocab != null) {
      Files.write(dir.resolve("vocab.txt"), vocab);
    }
  }

  /** The tensors of {@code ckpt} under the names Hugging Face's BertForSequenceClassification stores. */
  static LinkedHashMap<String, HostTensor> exported(HfCheckpoint ckpt) {
    LinkedHashMap<String, HostTensor> m = new LinkedHashMap<>();
    ckpt.tensors().forEach((n, t) -> m.put(BertTensorNames.exported(n), t));
    return m;
  }
}
