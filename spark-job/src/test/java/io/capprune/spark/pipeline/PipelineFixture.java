package io.capprune.spark.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.core.checkpoint.Safetensors;
import io.capprune.core.tensor.HostTensor;
import io.capprune.spark.cli.CapPruneMain;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * What the end-to-end tests share: the generated demo inputs cut down to seconds of work, the CLI
 * run with captured output, and readers for the files a run leaves behind.
 */
final class PipelineFixture {
  static final ObjectMapper JSON = new ObjectMapper();

  /**
   * The 6 Linear weights of an encoder layer, written out here so the test does not trust
   * ParameterNames.
   */
  static final Pattern ENCODER_LINEAR =
      Pattern.compile(
          "encoder\\.layer\\.\\d+\\.(attention\\.self\\.(query|key|value)|attention\\.output\\.dense"
              + "|intermediate\\.dense|output\\.dense)\\.weight");

  static final int TRAIN_EXAMPLES = 256;
  static final int BATCH = 32;
  static final int STEPS_PER_EPOCH = TRAIN_EXAMPLES / BATCH;
  static final int LOG_EVERY = 4;
  static final int FINETUNE_EPOCHS = 6;
  static final int FINETUNE_BATCH = 16;

  private PipelineFixture() {}

  /** The CLI's exit code and what it printed. */
  record Result(int code, String out, String err) {}

  /**
   * The demo model and task (DemoInputs), with 256 training and 200 dev examples, 6 finetune epochs
   * at batch 16 and {@code pruneEpochs} of pruning at batch 32: 8 steps per epoch.
   */
  static List<String> settings(Path inputs, int pruneEpochs) {
    DemoInputs.writeTo(inputs, 42);
    List<String> s = new ArrayList<>(DemoInputs.overrides(inputs));
    s.addAll(
        List.of(
            "max-train-examples=" + TRAIN_EXAMPLES,
            "max-dev-examples=200",
            // The generated task needs about 50 steps before the loss moves: 6 epochs of 16 steps.
            "finetune.epochs=" + FINETUNE_EPOCHS,
            "finetune.batch-size=" + FINETUNE_BATCH,
            "finetune.learning-rate=2e-3",
            "prune.epochs=" + pruneEpochs,
            "prune.batch-size=" + BATCH,
            "loss.extra-examples=64",
            "log.every-steps=" + LOG_EVERY));
    return s;
  }

  /** {@code cap-prune <command> --conf s... extra...} through CapPruneMain.run. */
  static Result cli(String command, List<String> settings, String... extra) {
    List<String> args = new ArrayList<>();
    args.add(command);
    for (String s : settings) {
      args.add("--conf");
      args.add(s);
    }
    args.addAll(List.of(extra));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code;
    try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
      code = CapPruneMain.run(args.toArray(String[]::new), o, e);
    }
    return new Result(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  static Result cliOk(String command, List<String> settings, String... extra) {
    Result r = cli(command, settings, extra);
    assertEquals(0, r.code(), () -> "cap-prune " + command + " failed:\n" + r.err());
    return r;
  }

  static JsonNode json(Path file) {
    try {
      return JSON.readTree(file.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": " + e.getMessage(), e);
    }
  }

  /** metrics.jsonl as raw objects, so a test can see which keys are absent. */
  static List<JsonNode> jsonLines(Path file) throws IOException {
    List<JsonNode> out = new ArrayList<>();
    for (String line : Files.readAllLines(file)) {
      if (!line.isBlank()) {
        out.add(JSON.readTree(line));
      }
    }
    return out;
  }

  static List<Long> steps(List<JsonNode> records) {
    return records.stream().map(r -> r.get("step").asLong()).toList();
  }

  static String sha256(Path file) throws IOException {
    try {
      return HexFormat.of()
          .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Every file under {@code root}: relative path to "sha256 size mtime". */
  static Map<String, String> fingerprint(Path root) throws IOException {
    Map<String, String> out = new TreeMap<>();
    try (Stream<Path> files = Files.walk(root)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        out.put(
            root.relativize(f).toString(),
            sha256(f) + " " + Files.size(f) + " " + Files.getLastModifiedTime(f).toMillis());
      }
    }
    return out;
  }

  static void copyTree(Path from, Path to) throws IOException {
    try (Stream<Path> all = Files.walk(from)) {
      for (Path p : all.toList()) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(target);
        } else {
          Files.copy(p, target, java.nio.file.StandardCopyOption.COPY_ATTRIBUTES);
        }
      }
    }
  }

  /** Deletes a file or tree and, for a file, the Hadoop checksum file beside it. */
  static void delete(Path p) throws IOException {
    if (Files.isDirectory(p)) {
      try (Stream<Path> all = Files.walk(p)) {
        for (Path q : all.sorted(Comparator.reverseOrder()).toList()) {
          Files.delete(q);
        }
      }
    } else {
      Files.deleteIfExists(p);
    }
    Files.deleteIfExists(p.resolveSibling("." + p.getFileName() + ".crc"));
  }

  /** Committed snapshot steps under {@code snapshots}, ascending. */
  static List<Long> committedSteps(Path snapshots) throws IOException {
    try (Stream<Path> dirs = Files.list(snapshots)) {
      return dirs.filter(d -> Files.exists(d.resolve("_COMMITTED")))
          .map(d -> Long.parseLong(d.getFileName().toString()))
          .sorted()
          .toList();
    }
  }

  /** Checks that the snapshot's marker lists its two files with their exact sizes and SHA-256. */
  static void assertCommitted(Path dir) throws IOException {
    JsonNode files = json(dir.resolve("_COMMITTED")).get("files");
    List<String> names = new ArrayList<>();
    files.fieldNames().forEachRemaining(names::add);
    assertEquals(
        List.of("state.safetensors", "state.json"),
        names,
        dir + "/_COMMITTED lists the wrong files");
    for (String name : names) {
      Path f = dir.resolve(name);
      assertEquals(
          files.get(name).get("bytes").asLong(),
          Files.size(f),
          f + ": size differs from the marker");
      assertEquals(
          files.get(name).get("sha256").asText(),
          sha256(f),
          f + ": sha256 differs from the marker");
    }
  }

  /**
   * The tensors of a snapshot's state.safetensors (weight/, score/, mask/, exp_avg/, exp_avg_sq/).
   */
  static Map<String, HostTensor> snapshotTensors(Path dir) throws IOException {
    return Safetensors.read(dir.resolve("state.safetensors")).tensors();
  }

  static Map<String, HostTensor> group(Map<String, HostTensor> all, String prefix) {
    Map<String, HostTensor> out = new LinkedHashMap<>();
    all.forEach(
        (k, v) -> {
          if (k.startsWith(prefix)) {
            out.put(k.substring(prefix.length()), v);
          }
        });
    return out;
  }

  static long nonZero(float[] data) {
    long n = 0;
    for (float v : data) {
      n += v != 0f ? 1 : 0;
    }
    return n;
  }

  /** A PNG: the 8-byte signature, an IHDR chunk first, and an image ImageIO can decode. */
  static void assertPng(Path file) throws IOException {
    byte[] b = Files.readAllBytes(file);
    byte[] signature = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    assertTrue(b.length > 33, file + ": too short for a PNG");
    assertTrue(
        java.util.Arrays.equals(signature, java.util.Arrays.copyOf(b, 8)),
        file + ": no PNG signature");
    assertEquals(
        "IHDR",
        new String(b, 12, 4, StandardCharsets.US_ASCII),
        file + ": first chunk is not IHDR");
    java.awt.image.BufferedImage img = javax.imageio.ImageIO.read(file.toFile());
    assertTrue(
        img != null && img.getWidth() >= 100 && img.getHeight() >= 100,
        file + ": not a decodable chart");
  }
}
