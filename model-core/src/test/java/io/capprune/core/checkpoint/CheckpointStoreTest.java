package io.capprune.core.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.capprune.core.checkpoint.Safetensors.Dtype;
import io.capprune.core.tensor.HalfPrecision;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.testing.TestModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointStoreTest {

  @TempDir Path tmp;
  private final Configuration conf = new Configuration();

  private static void assertSameTensors(HfCheckpoint a, HfCheckpoint b) {
    assertEquals(List.copyOf(a.tensors().keySet()), List.copyOf(b.tensors().keySet()));
    a.tensors()
        .forEach(
            (n, t) -> {
              assertArrayEquals(t.shape(), b.tensor(n).shape(), n);
              assertArrayEquals(t.data(), b.tensor(n).data(), n);
            });
  }

  private static List<String> files(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList());
    }
  }

  @Test
  void writeThenReadRoundTripsThroughAPlainPathAndAFileUri() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 1, true, true);
    Path dir = tmp.resolve("out");
    CheckpointStore.write(ckpt, dir.toString(), conf, false);
    // the layout transformers loads, and no Hadoop .crc side files
    assertEquals(List.of("config.json", "model.safetensors", "vocab.txt"), files(dir));

    HfCheckpoint back = CheckpointStore.read(dir.toString(), conf);
    assertSameTensors(ckpt, back);
    assertEquals(ckpt.config(), back.config());
    assertEquals(ckpt.vocab(), back.vocab());
    assertEquals("file:" + dir, back.source());

    HfCheckpoint viaUri = CheckpointStore.read(dir.toUri().toString(), conf);
    assertSameTensors(ckpt, viaUri);
  }

  @Test
  void weightsAreStoredUnderHuggingFaceNames() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 2, true, true);
    Path dir = tmp.resolve("hf");
    CheckpointStore.write(ckpt, dir.toString(), conf, false);
    Safetensors.Contents c = Safetensors.read(dir.resolve("model.safetensors"));
    assertEquals(Map.of("format", "pt"), c.metadata());
    List<String> names = List.copyOf(c.tensors().keySet());
    assertEquals("bert.embeddings.word_embeddings.weight", names.get(0));
    assertTrue(names.contains("bert.encoder.layer.1.output.LayerNorm.bias"));
    assertTrue(names.contains("bert.pooler.dense.weight"));
    assertTrue(names.contains("classifier.weight"));
    assertTrue(
        names.stream().allMatch(n -> n.startsWith("bert.") || n.startsWith("classifier.")),
        names::toString);
    assertEquals(ckpt.tensors().size(), names.size());
  }

  @Test
  void readsBothPrefixedAndUnprefixedNamesAndTheTfLayerNormNames() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 3, false, false);
    LinkedHashMap<String, HostTensor> mixed = new LinkedHashMap<>();
    ckpt.tensors()
        .forEach(
            (n, t) -> {
              String name =
                  n.startsWith("encoder.layer.0.") ? "bert." + n : n; // layer 0 prefixed, rest not
              mixed.put(
                  name.replace("LayerNorm.weight", "LayerNorm.gamma")
                      .replace("LayerNorm.bias", "LayerNorm.beta"),
                  t);
            });
    Path dir = tmp.resolve("mixed");
    TinyCheckpoints.writeDir(dir, ckpt.config().toJson(), mixed, ckpt.vocab());
    HfCheckpoint back = CheckpointStore.read(dir.toString(), conf);
    assertSameTensors(ckpt, back);
    assertFalse(back.hasPooler());
    assertFalse(back.hasClassifier());
  }

  @Test
  void sameTensorUnderTwoNamesIsAnError() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 4, false, false);
    LinkedHashMap<String, HostTensor> t = TinyCheckpoints.exported(ckpt);
    t.put("embeddings.LayerNorm.bias", HostTensor.zeros(8));
    Path dir = tmp.resolve("dup");
    TinyCheckpoints.writeDir(dir, ckpt.config().toJson(), t, ckpt.vocab());
    String msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertEquals(
        "file:"
            + dir.resolve("model.safetensors")
            + ": tensors 'bert.embeddings.LayerNorm.bias' and"
            + " 'embeddings.LayerNorm.bias' are both 'embeddings.LayerNorm.bias'",
        msg);
  }

  @Test
  void preTrainingHeadsAndPositionIdsAreSkipped() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 5, true, false);
    LinkedHashMap<String, HostTensor> t = TinyCheckpoints.exported(ckpt);
    t.put("cls.predictions.bias", HostTensor.zeros(20));
    t.put("cls.seq_relationship.weight", HostTensor.zeros(2, 8));
    Path dir = tmp.resolve("pretraining");
    TinyCheckpoints.writeDir(dir, ckpt.config().toJson(), t, ckpt.vocab());
    assertSameTensors(ckpt, CheckpointStore.read(dir.toString(), conf));
  }

  @Test
  void shardedCheckpointWithIndex() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 6, true, true);
    Path dir = tmp.resolve("sharded");
    long total = Safetensors.dataBytes(ckpt.tensors(), Dtype.F32);
    CheckpointStore.write(
        ckpt,
        dir.toString(),
        conf,
        CheckpointStore.WriteOptions.defaults().withMaxShardBytes(total / 3 + 1));
    List<String> files = files(dir);
    assertTrue(files.contains("model.safetensors.index.json"), files::toString);
    assertFalse(files.contains("model.safetensors"));
    long shards =
        files.stream().filter(f -> f.matches("model-0000\\d-of-0000\\d\\.safetensors")).count();
    assertTrue(shards >= 3, files::toString);
    assertTrue(
        files.contains(SafetensorsIndex.shardName((int) shards, (int) shards)), files::toString);

    SafetensorsIndex index =
        SafetensorsIndex.parse(
            Files.readString(dir.resolve("model.safetensors.index.json")), "index");
    assertEquals(total, index.totalSize());
    assertEquals(
        "model-00001-of-0000" + shards + ".safetensors",
        index.weightMap().get("bert.embeddings.word_embeddings.weight"));
    assertEquals(ckpt.tensors().size(), index.weightMap().size());

    assertSameTensors(ckpt, CheckpointStore.read(dir.toString(), conf));
  }

  @Test
  void shardedIndexInconsistencies() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 7, false, false);
    Path dir = tmp.resolve("bad-index");
    CheckpointStore.write(
        ckpt,
        dir.toString(),
        conf,
        CheckpointStore.WriteOptions.defaults().withMaxShardBytes(2000));
    Path indexFile = dir.resolve("model.safetensors.index.json");
    String original = Files.readString(indexFile);
    ObjectMapper json = new ObjectMapper();

    ObjectNode moved = (ObjectNode) json.readTree(original);
    String shard2 = SafetensorsIndex.parse(original, "i").shards().get(1);
    ((ObjectNode) moved.get("weight_map")).put("bert.embeddings.word_embeddings.weight", shard2);
    Files.writeString(indexFile, moved.toString());
    String msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertEquals(
        "file:"
            + indexFile
            + ": tensor 'bert.embeddings.word_embeddings.weight' is mapped to '"
            + shard2
            + "' but that shard does not contain it",
        msg);

    ObjectNode dropped = (ObjectNode) json.readTree(original);
    ((ObjectNode) dropped.get("weight_map")).remove("bert.embeddings.word_embeddings.weight");
    Files.writeString(indexFile, dropped.toString());
    msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertEquals(
        "file:"
            + dir.resolve(
                SafetensorsIndex.shardName(
                    1, SafetensorsIndex.parse(original, "i").shards().size()))
            + ": tensor"
            + " 'bert.embeddings.word_embeddings.weight' is not mapped to this shard in"
            + " model.safetensors.index.json (index says nothing)",
        msg);

    ObjectNode escape = (ObjectNode) json.readTree(original);
    ((ObjectNode) escape.get("weight_map"))
        .put("bert.embeddings.word_embeddings.weight", "../../etc/passwd");
    Files.writeString(indexFile, escape.toString());
    msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertEquals(
        "file:"
            + indexFile
            + ": weight_map tensor 'bert.embeddings.word_embeddings.weight': shard file"
            + " '../../etc/passwd' must be a plain file name in the checkpoint directory",
        msg);

    ObjectNode missing = (ObjectNode) json.readTree(original);
    ((ObjectNode) missing.get("weight_map"))
        .put("bert.embeddings.word_embeddings.weight", "model-gone.safetensors");
    Files.writeString(indexFile, missing.toString());
    msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertEquals(
        "file:"
            + indexFile
            + ": shard 'model-gone.safetensors' (holding tensor"
            + " 'bert.embeddings.word_embeddings.weight') does not exist",
        msg);
  }

  @Test
  void missingTensor() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 8, false, false);
    LinkedHashMap<String, HostTensor> t = TinyCheckpoints.exported(ckpt);
    t.remove("bert.encoder.layer.1.attention.self.key.weight");
    Path dir = tmp.resolve("missing");
    TinyCheckpoints.writeDir(dir, ckpt.config().toJson(), t, ckpt.vocab());
    String msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertEquals(
        "file:"
            + dir
            + ": missing tensor encoder.layer.1.attention.self.key.weight [8, 8]"
            + " (expected shape in brackets)",
        msg);
  }

  @Test
  void wrongShape() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 9, false, false);
    LinkedHashMap<String, HostTensor> t = TinyCheckpoints.exported(ckpt);
    t.put("bert.encoder.layer.0.intermediate.dense.weight", HostTensor.zeros(8, 16)); // transposed
    Path dir = tmp.resolve("shape");
    TinyCheckpoints.writeDir(dir, ckpt.config().toJson(), t, ckpt.vocab());
    String msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertEquals(
        "file:"
            + dir
            + ": tensor 'encoder.layer.0.intermediate.dense.weight' has shape [8, 16] but"
            + " config.json implies [16, 8]",
        msg);
  }

  @Test
  void incompleteOptionalHeadsAndUnexpectedTensors() {
    BertConfig c = TestModels.tinyCheckpoint();
    HfCheckpoint ckpt = TestModels.randomCheckpoint(c, 10, false, false);
    LinkedHashMap<String, HostTensor> t = new LinkedHashMap<>(ckpt.tensors());
    t.put("classifier.weight", HostTensor.zeros(3, 8));
    String msg =
        assertThrows(CheckpointException.class, () -> new HfCheckpoint("x", c, t, ckpt.vocab()))
            .getMessage();
    assertEquals("x: missing tensor classifier.bias [3] (expected shape in brackets)", msg);
    t.put("classifier.bias", HostTensor.zeros(2));
    msg =
        assertThrows(CheckpointException.class, () -> new HfCheckpoint("x", c, t, ckpt.vocab()))
            .getMessage();
    assertEquals("x: tensor 'classifier.bias' has shape [2] but config.json implies [3]", msg);
    t.put("classifier.bias", HostTensor.zeros(3));
    t.put("encoder.layer.2.output.dense.bias", HostTensor.zeros(8));
    msg =
        assertThrows(CheckpointException.class, () -> new HfCheckpoint("x", c, t, ckpt.vocab()))
            .getMessage();
    assertTrue(msg.startsWith("x: unexpected tensor 'encoder.layer.2.output.dense.bias'"), msg);
  }

  @Test
  void refusesToOverwriteUnlessTold() throws IOException {
    HfCheckpoint a = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 11, false, false);
    HfCheckpoint b = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 12, false, true);
    Path dir = tmp.resolve("existing");
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("notes.txt"), "keep me");
    String msg =
        assertThrows(
                CheckpointException.class,
                () -> CheckpointStore.write(a, dir.toString(), conf, false))
            .getMessage();
    assertEquals(
        "file:"
            + dir
            + ": already exists and is not empty (1 entries, e.g. 'notes.txt'); refusing to"
            + " overwrite",
        msg);
    assertEquals(List.of("notes.txt"), files(dir), "nothing touched");

    CheckpointStore.write(a, dir.toString(), conf, true);
    assertEquals(List.of("config.json", "model.safetensors", "vocab.txt"), files(dir));
    assertThrows(
        CheckpointException.class, () -> CheckpointStore.write(b, dir.toString(), conf, false));
    assertSameTensors(a, CheckpointStore.read(dir.toString(), conf));
    CheckpointStore.write(b, dir.toString(), conf, true);
    assertSameTensors(b, CheckpointStore.read(dir.toString(), conf));

    Path file = tmp.resolve("a-file");
    Files.writeString(file, "x");
    msg =
        assertThrows(
                CheckpointException.class,
                () -> CheckpointStore.write(a, file.toString(), conf, true))
            .getMessage();
    assertEquals("file:" + file + ": exists and is a file, not a checkpoint directory", msg);

    Path empty = tmp.resolve("empty");
    Files.createDirectories(empty);
    CheckpointStore.write(a, empty.toString(), conf, false); // an empty directory is fine
    assertSameTensors(a, CheckpointStore.read(empty.toString(), conf));
  }

  @Test
  void halfPrecisionCheckpoint() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 13, true, true);
    Path dir = tmp.resolve("fp16");
    CheckpointStore.write(
        ckpt, dir.toString(), conf, CheckpointStore.WriteOptions.defaults().withDtype(Dtype.F16));
    HfCheckpoint back = CheckpointStore.read(dir.toString(), conf);
    float[] w = ckpt.tensor("encoder.layer.1.output.dense.weight").data();
    float[] r = back.tensor("encoder.layer.1.output.dense.weight").data();
    for (int i = 0; i < w.length; i++) {
      assertEquals(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(w[i])), r[i], 0f);
    }
  }

  @Test
  void vocabularyFromTokenizerJsonWhenVocabTxtIsMissing() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 14, false, false);
    Path dir = tmp.resolve("tok");
    TinyCheckpoints.writeDir(dir, ckpt.config().toJson(), TinyCheckpoints.exported(ckpt), null);
    ObjectMapper json = new ObjectMapper();
    ObjectNode root = json.createObjectNode();
    root.put("version", "1.0");
    ObjectNode vocab = root.putObject("model").put("type", "WordPiece").putObject("vocab");
    for (int i = ckpt.vocab().size() - 1; i >= 0; i--) { // ids need not be in file order
      vocab.put(ckpt.vocab().get(i), i);
    }
    Files.writeString(dir.resolve("tokenizer.json"), root.toString());
    assertEquals(ckpt.vocab(), CheckpointStore.read(dir.toString(), conf).vocab());

    vocab.put("extra", 3);
    Files.writeString(dir.resolve("tokenizer.json"), root.toString());
    String msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertEquals(
        "file:"
            + dir.resolve("tokenizer.json")
            + ": key 'model.vocab': tokens '[SEP]' and 'extra'"
            + " share id 3",
        msg);

    Files.delete(dir.resolve("tokenizer.json"));
    msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertEquals(
        "file:"
            + dir
            + ": neither vocab.txt nor tokenizer.json (the vocabulary is needed to tokenize)",
        msg);
  }

  @Test
  void vocabularyLargerThanTheEmbeddingTable() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 15, false, false);
    Path dir = tmp.resolve("bigvocab");
    TinyCheckpoints.writeDir(
        dir, ckpt.config().toJson(), TinyCheckpoints.exported(ckpt), TestModels.vocab(21));
    String msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertEquals(
        "file:"
            + dir
            + ": the vocabulary has 21 tokens but config vocab_size is 20 (ids past the"
            + " embedding table)",
        msg);
  }

  @Test
  void missingDirectoryFilesAndConfigErrors() throws IOException {
    String msg =
        assertThrows(
                CheckpointException.class,
                () -> CheckpointStore.read(tmp.resolve("nope").toString(), conf))
            .getMessage();
    assertEquals("file:" + tmp.resolve("nope") + ": checkpoint directory does not exist", msg);

    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 16, false, false);
    Path dir = tmp.resolve("cfg");
    CheckpointStore.write(ckpt, dir.toString(), conf, false);
    Path config = dir.resolve("config.json");
    ObjectMapper json = new ObjectMapper();
    String good = Files.readString(config);

    Map<String, String> cases = new LinkedHashMap<>();
    cases.put("model_type=roberta", "config key 'model_type': unsupported model_type 'roberta'");
    cases.put("hidden_act=relu", "config key 'hidden_act': unsupported hidden_act 'relu'");
    cases.put("-hidden_size", "config key 'hidden_size': missing");
    cases.put(
        "num_attention_heads=3",
        "config key 'hidden_size': hidden_size 8 is not divisible by" + " num_attention_heads 3");
    cases.put("vocab_size=\"big\"", "config key 'vocab_size': expected an integer, got \"big\"");
    for (Map.Entry<String, String> c : cases.entrySet()) {
      ObjectNode o = (ObjectNode) json.readTree(good);
      String edit = c.getKey();
      if (edit.startsWith("-")) {
        o.remove(edit.substring(1));
      } else {
        String[] kv = edit.split("=", 2);
        o.set(kv[0], json.readTree(kv[1].matches("\\d+|\".*\"") ? kv[1] : "\"" + kv[1] + "\""));
      }
      Files.writeString(config, o.toString());
      msg =
          assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
              .getMessage();
      assertTrue(msg.startsWith("file:" + config + ": " + c.getValue()), edit + " -> " + msg);
    }

    Files.delete(config);
    msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertEquals("file:" + config + ": missing (every checkpoint needs its config.json)", msg);

    Files.writeString(config, good);
    Files.delete(dir.resolve("model.safetensors"));
    msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertTrue(
        msg.startsWith(
            "file:" + dir + ": neither model.safetensors nor model.safetensors.index.json"),
        msg);
  }

  @Test
  void corruptWeightsFileIsNamedThroughTheStore() throws IOException {
    HfCheckpoint ckpt = TestModels.randomCheckpoint(TestModels.tinyCheckpoint(), 17, false, false);
    Path dir = tmp.resolve("corrupt");
    CheckpointStore.write(ckpt, dir.toString(), conf, false);
    Path weights = dir.resolve("model.safetensors");
    byte[] bytes = Files.readAllBytes(weights);
    Files.write(weights, java.util.Arrays.copyOf(bytes, bytes.length - 10));
    String msg =
        assertThrows(CheckpointException.class, () -> CheckpointStore.read(dir.toString(), conf))
            .getMessage();
    assertTrue(msg.startsWith("file:" + weights + ": truncated or corrupt: tensor "), msg);
  }

  @Test
  void resolveTreatsSchemeLessLocationsAsLocalPaths() {
    assertEquals(
        "file:" + tmp.resolve("a b").toAbsolutePath(),
        CheckpointStore.resolve(tmp.resolve("a b").toString()).toString());
    assertEquals(
        "hdfs://nn:8020/models/x", CheckpointStore.resolve("hdfs://nn:8020/models/x").toString());
    assertEquals("s3a://bucket/x", CheckpointStore.resolve("s3a://bucket/x").toString());
    assertEquals(
        "file:" + Path.of("relative/dir").toAbsolutePath(),
        CheckpointStore.resolve("relative/dir").toString());
    assertThrows(IllegalArgumentException.class, () -> CheckpointStore.resolve(" "));
  }
}
