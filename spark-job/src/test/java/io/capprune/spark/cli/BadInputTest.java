package io.capprune.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.bert.BertInit;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.checkpoint.CheckpointStore;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.glue.SyntheticGlueTask;
import io.capprune.spark.pipeline.DemoInputs;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad input stops {@code cap-prune run} before any training (before Spark starts: the errors come
 * from configuration loading or {@code CapPipeline.validate}, printed as "cap-prune: ..." and not
 * as "cap-prune: run failed: ..."), with a message naming the file, line, key or location, and
 * leaves the output directory exactly as it was: same files, sizes and modification times, or still
 * absent.
 */
class BadInputTest {
  @TempDir static Path root;
  private static Path inputs;

  @BeforeAll
  static void inputs() {
    inputs = root.resolve("inputs");
    DemoInputs.writeTo(inputs, 11);
  }

  /** What one CLI call printed and returned. */
  private record Outcome(int code, String out, String err, double seconds) {}

  private static Outcome cli(List<String> args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    long t0 = System.nanoTime();
    int code;
    try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
      code = CapPruneMain.run(args.toArray(String[]::new), o, e);
    }
    return new Outcome(
        code,
        out.toString(StandardCharsets.UTF_8),
        err.toString(StandardCharsets.UTF_8),
        (System.nanoTime() - t0) / 1e9);
  }

  /**
   * {@code cap-prune run} on the demo inputs with small settings (should a case get past validation
   * by mistake, it would fail the test in seconds, not train for minutes), then {@code extra}.
   */
  private static Outcome run(String output, String... extra) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "run",
                "--conf",
                "task=sst2",
                "--conf",
                "model=\"" + inputs.resolve("pretrained") + "\"",
                "--conf",
                "data-dir=\"" + inputs.resolve("data") + "\"",
                "--conf",
                "spark.master=\"local[2]\"",
                "--conf",
                "max-seq-length=32",
                "--conf",
                "max-train-examples=64",
                "--conf",
                "finetune.epochs=1",
                // 3 epochs of 2 steps: the shortest run whose schedule (1 warm-up step x (2 + 3))
                // leaves a
                // step to prune, so that the cases below fail on what they test and not on the
                // schedule.
                "--conf",
                "prune.epochs=3",
                "--output",
                output));
    args.addAll(List.of(extra));
    return cli(args);
  }

  /** Every file and directory under {@code dir} (itself included) with its size and mtime. */
  private static Map<String, String> listing(Path dir) throws IOException {
    Map<String, String> m = new TreeMap<>();
    if (!Files.exists(dir)) {
      m.put(".", "absent");
      return m;
    }
    try (Stream<Path> all = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) all::iterator) {
        FileTime t = Files.getLastModifiedTime(p);
        m.put(
            dir.relativize(p).toString(),
            (Files.isDirectory(p) ? "dir" : Files.size(p) + " bytes") + " @" + t.toMillis());
      }
    }
    return m;
  }

  /** An existing, empty output directory: opening it for a run would write run.json into it. */
  private static Path emptyOutput(String name) throws IOException {
    Path out = root.resolve("out-" + name);
    Files.createDirectories(out);
    // so that a rewrite within the same millisecond would still change the mtime
    Files.setLastModifiedTime(out, FileTime.fromMillis(1_600_000_000_000L));
    return out;
  }

  private static void assertStoppedBeforeTraining(
      Outcome o,
      int code,
      Map<String, String> before,
      Map<String, String> after,
      String... mentions) {
    String err = o.err();
    assertEquals(code, o.code(), "exit code; stderr:\n" + err);
    for (String m : mentions) {
      assertTrue(err.contains(m), "stderr names '" + m + "':\n" + err);
    }
    assertFalse(
        err.contains("run failed"), "stopped by validation, not by a failing stage:\n" + err);
    assertEquals(before, after, "output directory unchanged");
  }

  private static Path dataDirWith(String name, String train, boolean withDev) throws IOException {
    Path d = root.resolve(name);
    Files.createDirectories(d);
    if (train != null) {
      Files.writeString(d.resolve("train.tsv"), train);
    }
    if (withDev) {
      Files.copy(inputs.resolve("data/dev.tsv"), d.resolve("dev.tsv"));
    }
    return d;
  }

  @Test
  void missingTrainingFile() throws IOException {
    Path data = dataDirWith("data-no-train", null, true);
    Path out = emptyOutput("missing");
    Map<String, String> before = listing(out);
    Outcome o = run(out.toString(), "--conf", "data-dir=\"" + data + "\"");
    assertStoppedBeforeTraining(
        o,
        1,
        before,
        listing(out),
        "cap.data-dir",
        data.resolve("train.tsv").toString(),
        "does not exist");
  }

  @Test
  void malformedTrainingFileNamesFileAndLine() throws IOException {
    List<String> lines = Files.readAllLines(inputs.resolve("data/train.tsv"));
    // line 1 is the header; the bad row becomes line 11
    lines.add(10, "a sentence\t1\tand a third column");
    Path data = dataDirWith("data-bad-row", String.join("\n", lines) + "\n", true);
    Path out = emptyOutput("malformed");
    Map<String, String> before = listing(out);
    Outcome o = run(out.toString(), "--conf", "data-dir=\"" + data + "\"");
    assertStoppedBeforeTraining(
        o,
        1,
        before,
        listing(out),
        data.resolve("train.tsv").toString(),
        "line 11",
        "expected 2 columns");
    // and a run that was never created stays absent
    Path absent = root.resolve("out-malformed-absent");
    o = run(absent.toString(), "--conf", "data-dir=\"" + data + "\"");
    assertStoppedBeforeTraining(o, 1, Map.of(".", "absent"), listing(absent), "line 11");
  }

  @Test
  void malformedDevFileStopsBeforeTrainingToo() throws IOException {
    Path data =
        dataDirWith("data-bad-dev", Files.readString(inputs.resolve("data/train.tsv")), false);
    List<String> dev = Files.readAllLines(inputs.resolve("data/dev.tsv"));
    dev.set(4, "only one column here");
    Files.writeString(data.resolve("dev.tsv"), String.join("\n", dev) + "\n");
    Path out = emptyOutput("bad-dev");
    Map<String, String> before = listing(out);
    Outcome o = run(out.toString(), "--conf", "data-dir=\"" + data + "\"");
    assertStoppedBeforeTraining(
        o, 1, before, listing(out), data.resolve("dev.tsv").toString(), "line 5");
  }

  @Test
  void unknownTaskNamesTheKey() throws IOException {
    Path out = emptyOutput("task");
    Map<String, String> before = listing(out);
    Outcome o = run(out.toString(), "--conf", "task=squad");
    assertStoppedBeforeTraining(o, 2, before, listing(out), "cap.task", "squad", "sst2");
  }

  @Test
  void unsupportedModelTypeNamesTheKey() throws IOException {
    Path model = root.resolve("roberta");
    Files.createDirectories(model);
    for (String f : List.of("config.json", "model.safetensors", "vocab.txt")) {
      Files.copy(inputs.resolve("pretrained").resolve(f), model.resolve(f));
    }
    Path config = model.resolve("config.json");
    String json = Files.readString(config);
    String roberta =
        json.replaceFirst("\"model_type\"\\s*:\\s*\"bert\"", "\"model_type\": \"roberta\"");
    assertFalse(roberta.equals(json), "the fixture changed model_type");
    Files.writeString(config, roberta);
    Path out = emptyOutput("roberta");
    Map<String, String> before = listing(out);
    Outcome o = run(out.toString(), "--conf", "model=\"" + model + "\"");
    assertStoppedBeforeTraining(
        o, 1, before, listing(out), config.toString(), "model_type", "roberta");
  }

  @Test
  void teacherWithOtherLabelsIsRefusedBeforeSpark() throws IOException {
    BertConfig three = DemoInputs.modelConfig().withNumLabels(3);
    Path teacher = root.resolve("teacher-3-labels");
    CheckpointStore.write(
        new HfCheckpoint(
            "three labels", three, BertInit.init(three, 5), SyntheticGlueTask.vocabulary()),
        teacher.toString(),
        new Configuration(),
        false);
    // run would skip finetune for a given teacher, prune uses it: both must refuse it up front
    for (String command : List.of("run", "prune")) {
      Path out = emptyOutput("teacher-" + command);
      Map<String, String> before = listing(out);
      List<String> args =
          new ArrayList<>(
              List.of(
                  command,
                  "--conf",
                  "task=sst2",
                  "--conf",
                  "model=\"" + inputs.resolve("pretrained") + "\"",
                  "--conf",
                  "data-dir=\"" + inputs.resolve("data") + "\"",
                  "--conf",
                  "spark.master=\"local[2]\"",
                  "--conf",
                  "max-train-examples=64",
                  "--conf",
                  "prune.epochs=1",
                  "--conf",
                  "teacher=\"" + teacher + "\"",
                  "--output",
                  out.toString()));
      Outcome o = cli(args);
      assertStoppedBeforeTraining(
          o,
          1,
          before,
          listing(out),
          "cap.teacher",
          teacher.toString(),
          "3 labels",
          "SST-2 needs 2");
    }
  }

  /**
   * The control for the teacher checks: a teacher with the task's labels passes them, and {@code
   * run} skips its finetune stage for it (it used to call finetune, which refuses a given teacher,
   * so {@code run --conf teacher=...} always failed).
   */
  @Test
  void runWithAGivenTeacherSkipsFinetuneAndPrunes() throws IOException {
    BertConfig two = DemoInputs.modelConfig().withNumLabels(2);
    Path teacher = root.resolve("teacher-2-labels");
    CheckpointStore.write(
        new HfCheckpoint("two labels", two, BertInit.init(two, 6), SyntheticGlueTask.vocabulary()),
        teacher.toString(),
        new Configuration(),
        false);
    Path out = root.resolve("out-given-teacher");
    Outcome o =
        run(
            out.toString(),
            "--conf",
            "teacher=\"" + teacher + "\"",
            "--conf",
            "spark.partitions=2",
            "--conf",
            "max-dev-examples=64",
            "--conf",
            "prune.epochs=2",
            "--conf",
            "prune.initial-warmup=1",
            "--conf",
            "prune.final-warmup=1",
            "--conf",
            "loss.extra-examples=32",
            "--conf",
            "log.every-steps=2");
    assertEquals(0, o.code(), o.err());
    assertTrue(Files.exists(out.resolve("_PRUNED")), "prune finished");
    assertTrue(Files.exists(out.resolve("model/config.json")), "model exported");
    assertFalse(Files.exists(out.resolve("teacher")), "no teacher trained");
    String metrics = Files.readString(out.resolve("metrics.json"));
    assertTrue(metrics.contains("\"teacher\"") && metrics.contains("\"pruned\""), metrics);
  }

  @Test
  void unreachableHdfsOutputFailsFast() {
    Outcome o = run("hdfs://127.0.0.1:1/cap-out");
    assertEquals(1, o.code(), o.err());
    assertTrue(o.err().contains("hdfs://127.0.0.1:1/cap-out"), o.err());
    assertFalse(o.err().contains("run failed"), o.err());
    assertTrue(o.seconds() < 30, "failed after " + o.seconds() + " s");
  }

  @Test
  void unreachableS3OutputFailsFast() throws IOException {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    Outcome o =
        run(
            "s3a://cap-bucket/run",
            "--conf",
            "s3.endpoint=\"http://127.0.0.1:" + port + "\"",
            "--conf",
            "s3.region=us-east-1",
            "--conf",
            "s3.path-style-access=true",
            "--conf",
            "s3.access-key=test",
            "--conf",
            "s3.secret-key=test-secret");
    assertEquals(1, o.code(), o.err());
    assertTrue(o.err().contains("s3a://cap-bucket/run"), o.err());
    assertTrue(o.err().contains("127.0.0.1:" + port), o.err());
    assertFalse(o.err().contains("test-secret"), "no secret in the message: " + o.err());
    // Hadoop's defaults (7 S3A retries x 5 SDK attempts, growing back-off) took 155 s here
    assertTrue(o.seconds() < 30, "failed after " + o.seconds() + " s");
  }

  @Test
  void targetSparsityOutsideTheOpenUnitInterval() throws IOException {
    for (String value : List.of("1.5", "0", "-0.2")) {
      Path out = emptyOutput("threshold-" + value);
      Map<String, String> before = listing(out);
      Outcome o = run(out.toString(), "--conf", "prune.final-threshold=" + value);
      assertStoppedBeforeTraining(
          o, 2, before, listing(out), "cap.prune.final-threshold", "must be in (0, 1)");
    }
  }

  @Test
  void outputHoldingAnotherRunIsRefusedAndUntouched() throws IOException {
    Path out = root.resolve("out-other-run");
    Files.createDirectories(out.resolve("snapshots/40"));
    Files.writeString(
        out.resolve("run.json"),
        """
        {"identity": {"task": "MRPC", "model": "/somewhere/else", "data-dir": "/data/mrpc",
          "method": "cap-soft", "final-threshold": "0.1"}, "created": "2024-01-01T00:00:00Z"}
        """);
    Files.writeString(out.resolve("snapshots/40/_COMMITTED"), "40\n");
    Files.writeString(out.resolve("sentinel.txt"), "do not touch\n");
    Map<String, String> before = listing(out);
    Outcome o = run(out.toString());
    assertStoppedBeforeTraining(
        o, 1, before, listing(out), out.toString(), "another run", "MRPC", "--overwrite");

    // files that are no run at all are refused the same way
    Path foreign = root.resolve("out-foreign");
    Files.createDirectories(foreign);
    Files.writeString(foreign.resolve("sentinel.txt"), "mine\n");
    before = listing(foreign);
    o = run(foreign.toString());
    assertStoppedBeforeTraining(
        o, 1, before, listing(foreign), "sentinel.txt", "not a cap-prune run");
  }
}
