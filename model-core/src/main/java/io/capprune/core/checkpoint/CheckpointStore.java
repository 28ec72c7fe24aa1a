package io.capprune.core.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.core.tensor.HostTensor;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Reads and writes Hugging Face checkpoint directories through the Hadoop FileSystem API, so the
 * same code serves a local disk, {@code file://}, {@code hdfs://} and {@code s3a://}.
 *
 * <p>A location without a scheme is a local path (relative to the working directory), whatever
 * {@code fs.defaultFS} says: a user typing {@code inspect ./model} means the disk in front of them.
 */
public final class CheckpointStore {

  public static final String CONFIG = "config.json";
  public static final String WEIGHTS = "model.safetensors";
  public static final String VOCAB = "vocab.txt";
  public static final String TOKENIZER = "tokenizer.json";

  /** Bound on config.json, the index, vocab.txt and tokenizer.json: they are untrusted too. */
  static final long MAX_TEXT_BYTES = 64L << 20;

  private static final Pattern HAS_SCHEME = Pattern.compile("^[a-zA-Z][a-zA-Z0-9+.-]+:.*");
  private static final ObjectMapper JSON = new ObjectMapper();

  private CheckpointStore() {}

  /**
   * @param overwrite replace an existing non-empty directory (it is deleted first, so no stale
   *     shard survives); without it such a directory is an error and nothing is touched
   * @param dtype F32, F16 or BF16 for the weights
   * @param maxShardBytes above this many data bytes the weights are split into {@code
   *     model-0000k-of-0000n.safetensors} plus the index, as {@code save_pretrained} does
   */
  public record WriteOptions(boolean overwrite, Safetensors.Dtype dtype, long maxShardBytes) {
    /** Hugging Face's default shard size. */
    public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;

    public static WriteOptions defaults() {
      return new WriteOptions(false, Safetensors.Dtype.F32, DEFAULT_MAX_SHARD_BYTES);
    }

    public WriteOptions withOverwrite(boolean o) {
      return new WriteOptions(o, dtype, maxShardBytes);
    }

    public WriteOptions withDtype(Safetensors.Dtype d) {
      return new WriteOptions(overwrite, d, maxShardBytes);
    }

    public WriteOptions withMaxShardBytes(long m) {
      return new WriteOptions(overwrite, dtype, m);
    }
  }

  /** A local path or a Hadoop URI as a qualified Hadoop path. */
  public static Path resolve(String dirOrUri) {
    if (dirOrUri == null || dirOrUri.isBlank()) {
      throw new IllegalArgumentException("empty checkpoint location");
    }
    if (HAS_SCHEME.matcher(dirOrUri).matches()) {
      return new Path(dirOrUri);
    }
    // Not Path(URI): java.nio adds a trailing slash to existing directories, which would then
    // differ from the same location given as a URI.
    return new Path(
        "file", null, java.nio.file.Path.of(dirOrUri).toAbsolutePath().normalize().toString());
  }

  /**
   * The file system of {@code path}. For local paths the raw file system: Hadoop's default local
   * one writes {@code .crc} side files that have no place in a directory users hand to {@code
   * transformers}.
   */
  static FileSystem fileSystem(Path path, Configuration conf) throws IOException {
    FileSystem fs = path.getFileSystem(conf);
    return fs instanceof LocalFileSystem local ? local.getRaw() : fs;
  }

  // ------------------------------------------------------------------------------------- reading

  public static HfCheckpoint read(String dirOrUri) throws IOException {
    return read(dirOrUri, new Configuration());
  }

  public static HfCheckpoint read(String dirOrUri, Configuration conf) throws IOException {
    Path dir = resolve(dirOrUri);
    FileSystem fs = fileSystem(dir, conf);
    FileStatus status;
    try {
      status = fs.getFileStatus(dir);
    } catch (FileNotFoundException e) {
      throw new CheckpointException(dir + ": checkpoint directory does not exist");
    }
    if (!status.isDirectory()) {
      throw new CheckpointException(
          dir
              + ": not a directory (a checkpoint is a directory holding "
              + CONFIG
              + " and "
              + WEIGHTS
              + ")");
    }
    Path configPath = new Path(dir, CONFIG);
    if (!fs.exists(configPath)) {
      throw new CheckpointException(
          configPath + ": missing (every checkpoint needs its config.json)");
    }
    BertConfig config = BertConfig.parse(readText(fs, configPath), configPath.toString());
    LinkedHashMap<String, HostTensor> tensors = readWeights(fs, dir);
    List<String> vocab = readVocab(fs, dir);
    return new HfCheckpoint(dir.toString(), config, tensors, vocab);
  }

  /** {@code model.safetensors}, or the shards its index names, with in-memory names. */
  static LinkedHashMap<String, HostTensor> readWeights(FileSystem fs, Path dir) throws IOException {
    Path single = new Path(dir, WEIGHTS);
    Path indexPath = new Path(dir, SafetensorsIndex.FILE_NAME);
    LinkedHashMap<String, HostTensor> raw = new LinkedHashMap<>();
    Map<String, String> fileOf = new HashMap<>();
    if (fs.exists(single)) {
      readShard(fs, single, raw, fileOf);
    } else if (fs.exists(indexPath)) {
      SafetensorsIndex index =
          SafetensorsIndex.parse(readText(fs, indexPath), indexPath.toString());
      for (String shard : index.shards()) {
        Path shardPath = new Path(dir, shard);
        if (!fs.exists(shardPath)) {
          throw new CheckpointException(
              indexPath
                  + ": shard '"
                  + shard
                  + "' (holding tensor '"
                  + index.tensorsIn(shard).get(0)
                  + "') does not exist");
        }
        Set<String> inFile = readShard(fs, shardPath, raw, fileOf);
        for (String name : index.tensorsIn(shard)) {
          if (!inFile.contains(name)) {
            throw new CheckpointException(
                indexPath
                    + ": tensor '"
                    + name
                    + "' is mapped to '"
                    + shard
                    + "' but that shard does not contain it");
          }
        }
        for (String name : inFile) {
          if (!shard.equals(index.weightMap().get(name))) {
            throw new CheckpointException(
                shardPath
                    + ": tensor '"
                    + name
                    + "' is not mapped to this shard in "
                    + SafetensorsIndex.FILE_NAME
                    + " (index says "
                    + (index.weightMap().containsKey(name)
                        ? "'" + index.weightMap().get(name) + "'"
                        : "nothing")
                    + ")");
          }
        }
      }
    } else {
      throw new CheckpointException(
          dir
              + ": neither "
              + WEIGHTS
              + " nor "
              + SafetensorsIndex.FILE_NAME
              + " (PyTorch .bin checkpoints are pickle and are not loaded: convert them to safetensors)");
    }
    return canonicalise(raw, fileOf);
  }

  /** Reads one file into {@code raw} (file names); returns every tensor name in its header. */
  private static Set<String> readShard(
      FileSystem fs, Path file, Map<String, HostTensor> raw, Map<String, String> fileOf)
      throws IOException {
    long length = fs.getFileStatus(file).getLen();
    Safetensors.Contents c;
    try (InputStream in = fs.open(file)) {
      c =
          Safetensors.read(
              in,
              length,
              file.toString(),
              name -> !BertTensorNames.ignored(BertTensorNames.canonical(name)));
    }
    for (Map.Entry<String, HostTensor> e : c.tensors().entrySet()) {
      raw.put(e.getKey(), e.getValue());
      fileOf.put(e.getKey(), file.toString());
    }
    return c.header().tensors().keySet();
  }

  private static LinkedHashMap<String, HostTensor> canonicalise(
      Map<String, HostTensor> raw, Map<String, String> fileOf) {
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    Map<String, String> origin = new HashMap<>();
    for (Map.Entry<String, HostTensor> e : raw.entrySet()) {
      String name = BertTensorNames.canonical(e.getKey());
      String previous = origin.put(name, e.getKey());
      if (previous != null) {
        throw new CheckpointException(
            fileOf.get(e.getKey())
                + ": tensors '"
                + previous
                + "' and '"
                + e.getKey()
                + "' are both '"
                + name
                + "'");
      }
      out.put(name, e.getValue());
    }
    return out;
  }

  /**
   * vocab.txt (one token per line, id = line number), else tokenizer.json's {@code model.vocab}.
   */
  static List<String> readVocab(FileSystem fs, Path dir) throws IOException {
    Path vocabTxt = new Path(dir, VOCAB);
    if (fs.exists(vocabTxt)) {
      String text = readText(fs, vocabTxt);
      List<String> tokens = new ArrayList<>(Arrays.asList(text.split("\n", -1)));
      if (!tokens.isEmpty() && tokens.get(tokens.size() - 1).isEmpty()) {
        tokens.remove(tokens.size() - 1); // the newline after the last token
      }
      if (tokens.isEmpty()) {
        throw new CheckpointException(vocabTxt + ": empty vocabulary");
      }
      return tokens;
    }
    Path tokJson = new Path(dir, TOKENIZER);
    if (fs.exists(tokJson)) {
      return vocabFromTokenizerJson(readText(fs, tokJson), tokJson.toString());
    }
    throw new CheckpointException(
        dir
            + ": neither "
            + VOCAB
            + " nor "
            + TOKENIZER
            + " (the vocabulary is needed to tokenize)");
  }

  static List<String> vocabFromTokenizerJson(String json, String source) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (IOException e) {
      throw new CheckpointException(source + ": not valid JSON: " + e.getMessage(), e);
    }
    JsonNode vocab = root == null ? null : root.path("model").get("vocab");
    if (vocab == null || !vocab.isObject() || vocab.isEmpty()) {
      throw new CheckpointException(
          source + ": key 'model.vocab' missing or not a non-empty object" + " of token -> id");
    }
    String[] byId = new String[vocab.size()];
    for (Map.Entry<String, JsonNode> e : vocab.properties()) {
      JsonNode id = e.getValue();
      if (!id.isIntegralNumber()
          || !id.canConvertToInt()
          || id.intValue() < 0
          || id.intValue() >= byId.length) {
        throw new CheckpointException(
            source
                + ": key 'model.vocab': token '"
                + e.getKey()
                + "' has id "
                + id
                + ", expected 0.."
                + (byId.length - 1));
      }
      if (byId[id.intValue()] != null) {
        throw new CheckpointException(
            source
                + ": key 'model.vocab': tokens '"
                + byId[id.intValue()]
                + "' and '"
                + e.getKey()
                + "' share id "
                + id.intValue());
      }
      byId[id.intValue()] = e.getKey();
    }
    return List.of(byId);
  }

  static String readText(FileSystem fs, Path file) throws IOException {
    long len = fs.getFileStatus(file).getLen();
    if (len > MAX_TEXT_BYTES) {
      throw new CheckpointException(
          file + ": " + len + " bytes, more than the " + MAX_TEXT_BYTES + " allowed for this file");
    }
    try (InputStream in = fs.open(file)) {
      byte[] bytes = in.readNBytes((int) len);
      return new String(bytes, StandardCharsets.UTF_8);
    }
  }

  // ------------------------------------------------------------------------------------- writing

  public static void write(
      HfCheckpoint ckpt, String dirOrUri, Configuration conf, boolean overwrite)
      throws IOException {
    write(ckpt, dirOrUri, conf, WriteOptions.defaults().withOverwrite(overwrite));
  }

  /**
   * Writes {@code config.json}, the weights ({@code bert.}-prefixed encoder, embeddings and pooler,
   * plain {@code classifier.*}) and {@code vocab.txt}: the layout {@code
   * BertForSequenceClassification.from_pretrained} loads. config.json is written last, so an
   * interrupted write leaves a directory that fails to load with "config.json missing" instead of
   * one that loads half a model.
   */
  public static void write(
      HfCheckpoint ckpt, String dirOrUri, Configuration conf, WriteOptions options)
      throws IOException {
    if (options.maxShardBytes() <= 0) {
      throw new IllegalArgumentException(
          "maxShardBytes must be > 0, got " + options.maxShardBytes());
    }
    Path dir = resolve(dirOrUri);
    FileSystem fs = fileSystem(dir, conf);
    if (fs.exists(dir)) {
      FileStatus st = fs.getFileStatus(dir);
      if (!st.isDirectory()) {
        throw new CheckpointException(dir + ": exists and is a file, not a checkpoint directory");
      }
      FileStatus[] entries = fs.listStatus(dir);
      if (entries.length > 0) {
        if (!options.overwrite()) {
          throw new CheckpointException(
              dir
                  + ": already exists and is not empty ("
                  + entries.length
                  + " entries, e.g. '"
                  + entries[0].getPath().getName()
                  + "'); refusing to overwrite");
        }
        if (!fs.delete(dir, true)) {
          throw new IOException(dir + ": could not delete the existing directory");
        }
      }
    }
    if (!fs.mkdirs(dir)) {
      throw new IOException(dir + ": could not create directory");
    }
    writeBytes(
        fs,
        new Path(dir, VOCAB),
        (String.join("\n", ckpt.vocab()) + "\n").getBytes(StandardCharsets.UTF_8));

    LinkedHashMap<String, HostTensor> exported = new LinkedHashMap<>();
    ckpt.tensors().forEach((name, t) -> exported.put(BertTensorNames.exported(name), t));
    Map<String, String> metadata = Map.of("format", "pt"); // transformers refuses files without it
    List<LinkedHashMap<String, HostTensor>> shards = split(exported, options);
    if (shards.size() == 1) {
      try (OutputStream out = fs.create(new Path(dir, WEIGHTS), false)) {
        Safetensors.write(out, exported, metadata, options.dtype());
      }
    } else {
      LinkedHashMap<String, String> weightMap = new LinkedHashMap<>();
      for (int i = 0; i < shards.size(); i++) {
        String name = SafetensorsIndex.shardName(i + 1, shards.size());
        try (OutputStream out = fs.create(new Path(dir, name), false)) {
          Safetensors.write(out, shards.get(i), metadata, options.dtype());
        }
        shards.get(i).keySet().forEach(t -> weightMap.put(t, name));
      }
      SafetensorsIndex index =
          new SafetensorsIndex(weightMap, Safetensors.dataBytes(exported, options.dtype()));
      writeBytes(
          fs,
          new Path(dir, SafetensorsIndex.FILE_NAME),
          index.toJson().getBytes(StandardCharsets.UTF_8));
    }
    writeBytes(fs, new Path(dir, CONFIG), ckpt.config().toJson().getBytes(StandardCharsets.UTF_8));
  }

  /** Greedy split in tensor order; a tensor larger than the limit gets a shard of its own. */
  private static List<LinkedHashMap<String, HostTensor>> split(
      Map<String, HostTensor> tensors, WriteOptions options) {
    List<LinkedHashMap<String, HostTensor>> shards = new ArrayList<>();
    LinkedHashMap<String, HostTensor> current = new LinkedHashMap<>();
    long bytes = 0;
    for (Map.Entry<String, HostTensor> e : tensors.entrySet()) {
      long size = (long) e.getValue().numel() * options.dtype().bytes;
      if (!current.isEmpty() && bytes + size > options.maxShardBytes()) {
        shards.add(current);
        current = new LinkedHashMap<>();
        bytes = 0;
      }
      current.put(e.getKey(), e.getValue());
      bytes += size;
    }
    shards.add(current);
    return shards;
  }

  private static void writeBytes(FileSystem fs, Path file, byte[] bytes) throws IOException {
    try (OutputStream out = fs.create(file, false)) {
      out.write(bytes);
    }
  }
}
