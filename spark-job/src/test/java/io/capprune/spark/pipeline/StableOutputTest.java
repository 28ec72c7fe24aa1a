package io.capprune.spark.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.capprune.spark.cli.CapPruneMain;
import java.io.File;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 20 item 6: the same command run twice gives byte-identical JSON files (run.json,
 * metrics.json, sparsity.json, structured.json, every snapshot's state.json and _COMMITTED marker,
 * the teacher's and the model's config.json, metrics.jsonl), apart from the fields that are times.
 *
 * <p>The two runs are two JVMs: a {@code Map.of} iterates in an order salted per JVM, so two runs
 * in one JVM would not show a key order that changes between processes. Each JVM runs a small
 * unstructured (cap-movement) and a small structured (cap-structured) pipeline.
 */
class StableOutputTest {
  @TempDir static Path tmp;

  /** Keys whose values are clock readings, or derived from them (throughput). */
  static final Pattern TIME_FIELD =
      Pattern.compile(
          "(\"(written|created|seconds_elapsed|seconds_left|examples_per_second)\"\\s*:\\s*)(\"[^\"]*\"|[-0-9.eE+]+)");

  /** The child JVM: both pipelines into args[0], settings from args[1..]. */
  public static void main(String[] args) {
    Path out = Path.of(args[0]);
    List<String> settings = List.of(args).subList(1, args.length);
    for (String method : List.of("cap-movement", "cap-structured")) {
      List<String> cli = new ArrayList<>(List.of("run"));
      for (String s : settings) {
        cli.addAll(List.of("--conf", s));
      }
      cli.addAll(
          List.of("--conf", "prune.method=" + method, "--output", out.resolve(method).toString()));
      int code = CapPruneMain.run(cli.toArray(String[]::new), System.out, System.err);
      if (code != 0) {
        System.exit(code);
      }
    }
    System.exit(0);
  }

  @Test
  void twoRunsOfTheSameCommandWriteTheSameJson() throws Exception {
    List<String> settings = new ArrayList<>(PipelineFixture.settings(tmp.resolve("inputs"), 2));
    settings.addAll(
        List.of(
            "max-train-examples=128",
            "finetune.epochs=1",
            "prune.batch-size=32",
            "structured.head-fractions=[0.25, 0.5]",
            "structured.neuron-fractions=[0.25, 0.5]",
            "structured.retrain-epochs=1"));
    // The same output path both times (it is part of the configuration state.json records); each
    // run's directory is moved aside before the next.
    Path out = tmp.resolve("run");
    Path a = tmp.resolve("a");
    Path b = tmp.resolve("b");
    fork(out, settings);
    Files.move(out, a);
    fork(out, settings);
    Files.move(out, b);

    Map<String, String> filesA = jsonFiles(a);
    Map<String, String> filesB = jsonFiles(b);
    assertEquals(filesA.keySet(), filesB.keySet(), "the same JSON files");
    for (String must :
        List.of(
            "cap-movement/metrics.json",
            "cap-movement/sparsity.json",
            "cap-movement/run.json",
            "cap-structured/structured.json",
            "cap-structured/metrics.json",
            "cap-movement/metrics.jsonl",
            "cap-movement/model/config.json")) {
      assertTrue(filesA.containsKey(must), must + " in " + filesA.keySet());
    }
    assertTrue(
        filesA.keySet().stream().anyMatch(f -> f.endsWith("state.json")),
        filesA.keySet().toString());
    for (String f : filesA.keySet()) {
      assertEquals(filesA.get(f), filesB.get(f), f + " differs between the two runs");
    }
  }

  private static void fork(Path out, List<String> settings)
      throws IOException, InterruptedException {
    String cp =
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    for (String arg : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (!arg.startsWith("-agentlib") && !arg.startsWith("-javaagent")) {
        cmd.add(arg);
      }
    }
    cmd.addAll(List.of("-cp", cp, StableOutputTest.class.getName(), out.toString()));
    cmd.addAll(settings);
    Path log = out.resolveSibling(out.getFileName() + ".log");
    Process p =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    if (!p.waitFor(10, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      throw new AssertionError("the child run did not finish in 10 minutes; log " + log);
    }
    assertEquals(0, p.exitValue(), () -> "child run failed:\n" + tail(log));
  }

  private static String tail(Path log) {
    try {
      List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    } catch (IOException e) {
      return e.toString();
    }
  }

  /** Every JSON file under root (relative path to its text with the time fields blanked). */
  static Map<String, String> jsonFiles(Path root) throws IOException {
    Map<String, String> out = new TreeMap<>();
    try (Stream<Path> all = Files.walk(root)) {
      for (Path f : all.filter(Files::isRegularFile).toList()) {
        String name = f.getFileName().toString();
        String rel = root.relativize(f).toString().replace(File.separatorChar, '/');
        if (name.equals("_COMMITTED")) {
          out.put(rel, committedMarker(f));
        } else if (name.endsWith(".json") || name.endsWith(".jsonl")) {
          out.put(rel, TIME_FIELD.matcher(Files.readString(f)).replaceAll("$1\"<time>\""));
        }
      }
    }
    return out;
  }

  /**
   * A snapshot marker with the size and hash of state.json left out: state.json holds the time it
   * was written, so its hash differs; every other file's size and hash, and the key order, stay.
   */
  private static String committedMarker(Path f) throws IOException {
    ObjectMapper json = new ObjectMapper();
    String text = Files.readString(f);
    JsonNode tree = json.readTree(text);
    ((ObjectNode) tree.get("files")).put("state.json", "<depends on the write time>");
    // re-printed from the parsed tree: the key order of the file is kept
    return json.writerWithDefaultPrettyPrinter().writeValueAsString(tree);
  }
}
