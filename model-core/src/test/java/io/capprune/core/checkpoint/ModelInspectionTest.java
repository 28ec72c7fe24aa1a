package io.capprune.core.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.testing.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelInspectionTest {

  @TempDir Path tmp;

  /**
   * Tiny model with known zeros: half of layer 0's query, all of layer 1's FFN output, a LayerNorm.
   */
  private static HfCheckpoint pruned() {
    HfCheckpoint base = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 21, true, true);
    LinkedHashMap<String, HostTensor> t = new LinkedHashMap<>();
    base.tensors().forEach((n, v) -> t.put(n, v.copy()));
    Arrays.fill(t.get("encoder.layer.0.attention.self.query.weight").data(), 0, 32, 0f);
    Arrays.fill(t.get("encoder.layer.1.output.dense.weight").data(), 0f);
    Arrays.fill(t.get("encoder.layer.1.output.LayerNorm.weight").data(), 0f); // not a Linear weight
    return new HfCheckpoint("tiny", base.config(), t, base.vocab());
  }

  @Test
  void countsAndSparsity() {
    ModelInspection r = ModelInspection.of(pruned());
    // embeddings 20*8 + 16*8 + 2*8 + 2*8 = 320; per layer 4*(64+8) + 2*8 + (128+16) + (128+8) + 2*8
    // = 600;
    // pooler 64+8; classifier 24+3
    assertEquals(320 + 2 * 600 + 72 + 27, r.parameters());
    assertEquals(2 * (4 * 64 + 2 * 128), r.encoderLinearWeights());
    assertEquals(32 + 128, r.encoderLinearZeros());
    assertEquals(160.0 / 1024, r.encoderLinearSparsity(), 1e-12);
    assertEquals(12, r.matrices().size());
    assertEquals("encoder.layer.0.attention.self.query.weight", r.matrices().get(0).name());
    assertEquals(0.5, r.matrices().get(0).sparsity(), 1e-12);
    assertEquals("encoder.layer.1.output.dense.weight", r.matrices().get(11).name());
    assertEquals(1.0, r.matrices().get(11).sparsity(), 1e-12);
    assertEquals(0.0, r.matrices().get(1).sparsity(), 1e-12);
  }

  @Test
  void jsonReport() throws IOException {
    JsonNode j = new ObjectMapper().readTree(ModelInspection.of(pruned()).toJson());
    assertEquals("bert", j.get("model_type").asText());
    assertEquals(2, j.get("num_hidden_layers").asInt());
    assertEquals(8, j.get("hidden_size").asInt());
    assertEquals(2, j.get("num_attention_heads").asInt());
    assertEquals(16, j.get("intermediate_size").asInt());
    assertEquals(20, j.get("vocab_size").asInt());
    assertEquals(1619, j.get("parameters").asLong());
    assertEquals(1024, j.get("encoder_linear_weights").asLong());
    assertEquals(0.15625, j.get("encoder_linear_sparsity").asDouble(), 1e-12);
    JsonNode m = j.get("matrices");
    assertEquals(12, m.size());
    assertEquals("encoder.layer.0.intermediate.dense.weight", m.get(4).get("name").asText());
    assertEquals("[16,8]", m.get(4).get("shape").toString());
    assertEquals(0.5, m.get(0).get("sparsity").asDouble(), 1e-12);
  }

  @Test
  void textReportIsAnAlignedTable() {
    String text = ModelInspection.of(pruned()).toText();
    assertTrue(text.contains("parameters         1,619 in 41 tensors"), text);
    assertTrue(text.contains("encoder linear     1,024 weights, 160 zero, sparsity 15.63%"), text);
    String[] lines = text.split("\\R");
    int header =
        Arrays.asList(lines)
            .indexOf(
                Arrays.stream(lines).filter(l -> l.startsWith("matrix")).findFirst().orElseThrow());
    assertEquals(13, lines.length - header, text);
    int width = lines[header].length();
    for (int i = header; i < lines.length; i++) {
      assertEquals(width, lines[i].length(), "aligned: " + lines[i]);
    }
    assertTrue(
        lines[header + 1].matches(
            "encoder\\.layer\\.0\\.attention\\.self\\.query\\.weight +8 x 8 +50\\.00%"),
        lines[header + 1]);
    assertTrue(lines[lines.length - 1].endsWith("8 x 16    100.00%"), lines[lines.length - 1]);
  }

  private record Run(int code, String out, String err) {}

  private static Run run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        ModelInspection.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8),
            new Configuration());
    return new Run(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void cliEntry() throws IOException {
    Path dir = tmp.resolve("model");
    CheckpointStore.write(pruned(), dir.toString(), new Configuration(), false);

    Run json = run(dir.toString(), "--json");
    assertEquals(0, json.code(), json.err());
    assertEquals(1619, new ObjectMapper().readTree(json.out()).get("parameters").asLong());
    assertEquals("file:" + dir, new ObjectMapper().readTree(json.out()).get("checkpoint").asText());

    Run text = run("--json", dir.toUri().toString());
    assertEquals(0, text.code());
    Run plain = run(dir.toString());
    assertEquals(0, plain.code());
    assertTrue(plain.out().startsWith("checkpoint         file:" + dir), plain.out());

    Run none = run();
    assertEquals(2, none.code());
    assertEquals("inspect: no checkpoint given\n" + ModelInspection.USAGE + "\n", none.err());
    Run unknown = run(dir.toString(), "--yaml");
    assertEquals(2, unknown.code());
    assertTrue(unknown.err().startsWith("inspect: unknown option '--yaml'"), unknown.err());
    Run two = run("a", "b");
    assertEquals(2, two.code());
    assertTrue(
        two.err().startsWith("inspect: more than one checkpoint given ('a', 'b')"), two.err());
    Run help = run("--help");
    assertEquals(0, help.code());
    assertEquals(ModelInspection.USAGE + "\n", help.out());

    Run missing = run(tmp.resolve("nope").toString());
    assertEquals(1, missing.code());
    assertEquals(
        "inspect: file:" + tmp.resolve("nope") + ": checkpoint directory does not exist\n",
        missing.err());
    assertEquals("", missing.out());
  }
}
