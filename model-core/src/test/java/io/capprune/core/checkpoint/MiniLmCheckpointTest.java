package io.capprune.core.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.core.tensor.HostTensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The real all-MiniLM-L6-v2 checkpoint from ../shared/data. */
@Tag("realdata")
class MiniLmCheckpointTest {

  private static Path dir;
  private static HfCheckpoint ckpt;

  @BeforeAll
  static void load() throws IOException {
    String shared = System.getProperty("capprune.sharedData");
    assertNotNull(shared, "system property capprune.sharedData (set by surefire)");
    dir = Path.of(shared, "models", "all-MiniLM-L6-v2");
    // Warm-up read so the figure below is the steady state, not class loading and JIT.
    CheckpointStore.read(dir.toString(), new Configuration());
    long t0 = System.nanoTime();
    ckpt = CheckpointStore.read(dir.toString(), new Configuration());
    long ms = (System.nanoTime() - t0) / 1_000_000;
    System.out.printf(
        "MiniLM checkpoint (90 MB) read through CheckpointStore in %d ms (%.0f MB/s)%n",
        ms, Files.size(dir.resolve("model.safetensors")) / 1e6 / Math.max(ms, 1) * 1000);
  }

  @Test
  void configAndCounts() {
    BertConfig c = ckpt.config();
    assertEquals(6, c.numHiddenLayers());
    assertEquals(384, c.hiddenSize());
    assertEquals(12, c.numAttentionHeads());
    assertEquals(1536, c.intermediateSize());
    assertEquals(30522, c.vocabSize());
    assertEquals(101, ckpt.tensors().size());
    assertEquals(22_565_376L, ckpt.parameterCount());
    assertFalse(ckpt.hasPooler());
    assertFalse(ckpt.hasClassifier());
    assertEquals(30522, ckpt.vocab().size());
    assertEquals("[CLS]", ckpt.vocab().get(101));
    assertEquals("[UNK]", ckpt.vocab().get(100));
  }

  @Test
  void valuesMatchAnIndependentReader() throws IOException {
    // numpy over the raw bytes (np.frombuffer '<f4')
    assertArrayEquals(
        new float[] {
          0.5989283323287964f, 0.583594799041748f, 0.6335410475730896f, 0.6244606375694275f
        },
        Arrays.copyOf(ckpt.tensor("embeddings.LayerNorm.weight").data(), 4));
    HostTensor w = ckpt.tensor("encoder.layer.5.output.dense.weight");
    assertArrayEquals(new int[] {384, 1536}, w.shape());
    assertEquals(0.0012321292888373137f, w.data()[383 * 1536 + 1535]);
    assertArrayEquals(
        new float[] {-0.056546345353126526f, 0.009879817254841328f, -0.012258711270987988f},
        Arrays.copyOf(w.data(), 3));
    float[] cls =
        Arrays.copyOfRange(
            ckpt.tensor("embeddings.word_embeddings.weight").data(), 101 * 384, 101 * 384 + 3);
    assertArrayEquals(
        new float[] {-0.01761939749121666f, -0.007600549608469009f, 0.047105543315410614f}, cls);

    // and DJL's decoder agrees on every tensor, element for element
    try (NDManager manager = NDManager.newBaseManager();
        InputStream in = Files.newInputStream(dir.resolve("model.safetensors"))) {
      NDList list = NDList.decode(manager, in);
      assertEquals(101, list.size());
      for (NDArray a : list) {
        assertArrayEquals(a.toFloatArray(), ckpt.tensor(a.getName()).data(), a.getName());
      }
    }
  }

  @Test
  void tokenizerJsonVocabularyEqualsVocabTxt() throws IOException {
    String json = Files.readString(dir.resolve("tokenizer.json"));
    assertEquals(ckpt.vocab(), CheckpointStore.vocabFromTokenizerJson(json, "tokenizer.json"));
  }

  @Test
  void inspectJson() throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        ModelInspection.run(
            new String[] {dir.toString(), "--json"},
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8),
            new Configuration());
    assertEquals(0, code, err.toString(StandardCharsets.UTF_8));
    JsonNode j = new ObjectMapper().readTree(out.toString(StandardCharsets.UTF_8));
    assertEquals("bert", j.get("model_type").asText());
    assertEquals(6, j.get("num_hidden_layers").asInt());
    assertEquals(384, j.get("hidden_size").asInt());
    assertEquals(12, j.get("num_attention_heads").asInt());
    assertEquals(1536, j.get("intermediate_size").asInt());
    assertEquals(30522, j.get("vocab_size").asInt());
    assertEquals(22_565_376L, j.get("parameters").asLong());
    assertEquals(10_616_832L, j.get("encoder_linear_weights").asLong());
    assertEquals(0.0, j.get("encoder_linear_sparsity").asDouble()); // numpy: no exact zeros
    assertEquals(36, j.get("matrices").size());
    assertEquals(
        "encoder.layer.5.output.dense.weight", j.get("matrices").get(35).get("name").asText());
    assertEquals("[384,1536]", j.get("matrices").get(35).get("shape").toString());
    System.out.print(ModelInspection.of(ckpt).toText());
  }

  @Test
  void writesAHuggingFaceDirectoryThatReadsBackIdentically(@TempDir Path tmp) throws IOException {
    Path out = tmp.resolve("minilm-copy");
    long t0 = System.nanoTime();
    CheckpointStore.write(ckpt, out.toString(), new Configuration(), false);
    System.out.printf("MiniLM checkpoint written in %d ms%n", (System.nanoTime() - t0) / 1_000_000);
    HfCheckpoint back = CheckpointStore.read(out.toString(), new Configuration());
    assertEquals(ckpt.config(), back.config());
    assertEquals(ckpt.vocab(), back.vocab());
    ckpt.tensors().forEach((n, t) -> assertArrayEquals(t.data(), back.tensor(n).data(), n));
    assertEquals(Files.size(dir.resolve("vocab.txt")), Files.size(out.resolve("vocab.txt")));
  }
}
