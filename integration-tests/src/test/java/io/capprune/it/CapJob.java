package io.capprune.it;

import io.capprune.spark.pipeline.DemoInputs;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;

/**
 * The real CAP job as the ITs submit it: the shaded application jar plus the libtorch native jar
 * ({@code --jars}), the demo's generated model and task copied to remote storage, and the demo's
 * settings with fewer steps so a whole {@code run} takes about a minute on the 2-worker cluster.
 */
public final class CapJob {

  public static final String MAIN_CLASS = "io.capprune.spark.cli.CapPruneMain";
  public static final long SEED = 42;

  /**
   * Training examples the job uses (max-train-examples), batch size and epochs: the step counts
   * below.
   */
  public static final int TRAIN_EXAMPLES = 512;

  public static final int BATCH_SIZE = 32;
  public static final int FINETUNE_EPOCHS = 1;
  public static final int PRUNE_EPOCHS = 2;
  public static final int STEPS_PER_EPOCH = (TRAIN_EXAMPLES + BATCH_SIZE - 1) / BATCH_SIZE;
  public static final long PRUNE_STEPS = (long) PRUNE_EPOCHS * STEPS_PER_EPOCH;
  public static final long FINETUNE_STEPS = (long) FINETUNE_EPOCHS * STEPS_PER_EPOCH;
  public static final double FINAL_KEPT_FRACTION = 0.1;

  /**
   * Keys of the demo's settings this class replaces: locations, the local master, the step counts.
   */
  private static final Set<String> REPLACED =
      Set.of(
          "model",
          "data-dir",
          "output",
          "spark.master",
          "spark.partitions",
          "finetune.epochs",
          "prune.epochs",
          "log.every-steps",
          "prune.final-threshold");

  private CapJob() {}

  /** spark-job/target/lib/pytorch-native-cpu-*.jar: the executors' libtorch. */
  public static Path nativeJar(ItSettings settings) {
    Path lib = settings.appJar().getParent().resolve("lib");
    if (Files.isDirectory(lib)) {
      try (Stream<Path> files = Files.list(lib)) {
        Path found =
            files
                .filter(p -> p.getFileName().toString().startsWith("pytorch-native-cpu-"))
                .sorted()
                .findFirst()
                .orElse(null);
        if (found != null) {
          return found;
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot list " + lib, e);
      }
    }
    return lib.resolve("pytorch-native-cpu-<version>-linux-x86_64.jar");
  }

  /**
   * deploy/spark-submit-standalone.sh: what users run against a standalone master, and what the ITs
   * submit with.
   */
  public static Path standaloneWrapper() {
    return ItSettings.requireFile(
        ItSettings.repoDir().resolve("deploy/spark-submit-standalone.sh"),
        "the repository's deploy/ directory (capprune.it.repoDir)");
  }

  /** The log4j2 configuration of bin/cap-prune: the job's progress at INFO, Spark at WARN. */
  public static Path log4jConfig(ItSettings settings) {
    return Path.of(
        System.getProperty(
            "capprune.it.log4jConfig",
            settings
                .appJar()
                .getParent()
                .getParent()
                .getParent()
                .resolve("conf/log4j2.properties")
                .toString()));
  }

  /** Writes the demo's model and task (deterministic for a seed) under {@code dir}, once. */
  public static Path demoInputs(ItSettings settings) {
    Path dir = settings.buildDir().resolve("it-cap-inputs");
    DemoInputs.writeTo(dir, SEED);
    return dir;
  }

  /**
   * Copies the demo inputs ({@code pretrained/}, {@code data/}) to {@code remote} through the
   * Hadoop FileSystem API.
   */
  public static void upload(Path localInputs, URI remote, Configuration conf) throws IOException {
    org.apache.hadoop.fs.Path dst = new org.apache.hadoop.fs.Path(remote);
    FileSystem fs = FileSystem.newInstance(remote, conf);
    try {
      fs.mkdirs(dst);
      for (String sub : List.of("pretrained", "data")) {
        fs.copyFromLocalFile(
            false,
            true,
            new org.apache.hadoop.fs.Path(localInputs.resolve(sub).toUri()),
            new org.apache.hadoop.fs.Path(dst, sub));
      }
    } finally {
      fs.close();
    }
  }

  /** The job settings: the demo's, with inputs under {@code inputs} and the reduced step counts. */
  public static List<String> jobConf(URI inputs) {
    List<String> conf = new ArrayList<>();
    for (String o : DemoInputs.overrides(Path.of("/unused"))) {
      if (!REPLACED.contains(o.substring(0, o.indexOf('=')))) {
        conf.add(o);
      }
    }
    String base = inputs.toString().replaceAll("/+$", "");
    conf.add("model=\"" + base + "/pretrained\"");
    conf.add("data-dir=\"" + base + "/data\"");
    // one shard per executor: each of the two executor JVMs trains on its own partition
    conf.add("spark.partitions=2");
    conf.add("max-train-examples=" + TRAIN_EXAMPLES);
    conf.add("max-dev-examples=256");
    conf.add("finetune.epochs=" + FINETUNE_EPOCHS);
    conf.add("finetune.batch-size=" + BATCH_SIZE);
    conf.add("prune.epochs=" + PRUNE_EPOCHS);
    conf.add("prune.batch-size=" + BATCH_SIZE);
    conf.add("prune.final-threshold=" + FINAL_KEPT_FRACTION);
    conf.add("log.every-steps=4");
    return conf;
  }

  /**
   * A submission of CapPruneMain on {@code master} through deploy/spark-submit-standalone.sh:
   * {@code command} (run, prune, ...) with {@code jobConf} as {@code --conf} arguments, {@code
   * --output}, and {@code sparkConf} on top of the harness defaults. The event log goes to {@code
   * eventLogDir} (uncompressed), so a test can see which executor ran which task.
   */
  public static SparkSubmitter.Submission submission(
      ItSettings settings,
      String name,
      String master,
      String command,
      URI output,
      List<String> jobConf,
      Map<String, String> sparkConf,
      Path eventLogDir) {
    Map<String, String> conf = new LinkedHashMap<>(SparkSubmitter.defaultConf(settings, 2));
    try {
      Files.createDirectories(eventLogDir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + eventLogDir, e);
    }
    conf.put("spark.eventLog.enabled", "true");
    conf.put("spark.eventLog.dir", eventLogDir.toUri().toString());
    conf.put("spark.eventLog.compress", "false");
    // one JSON-lines file per application (Spark 4 rolls into a directory by default)
    conf.put("spark.eventLog.rolling.enabled", "false");
    // libtorch threads = the cores an executor owns (1): two executors share this machine's 2 cores
    conf.put(
        "spark.executor.extraJavaOptions",
        conf.get("spark.executor.extraJavaOptions")
                .replaceAll("-Dai\\.djl\\.pytorch\\.num_threads=\\S+", "")
            + " -Dai.djl.pytorch.num_threads=1");
    // Spark sometimes runs both tasks of the first (tokenize) job in one executor; the shards are
    // then cached there and delay scheduling keeps every later step in that JVM. Without the wait a
    // free executor takes the task and fetches the cached shard (see docs/integration-tests.md).
    conf.put("spark.locality.wait", "0s");
    conf.putAll(sparkConf);
    List<String> args = new ArrayList<>();
    args.add(command);
    for (String c : jobConf) {
      args.add("--conf");
      args.add(c);
    }
    args.add("--output");
    args.add(output.toString());
    return new SparkSubmitter.Submission(
        name,
        master,
        MAIN_CLASS,
        settings.appJar(),
        List.of(nativeJar(settings)),
        conf,
        args,
        List.of("-Dlog4j2.configurationFile=" + log4jConfig(settings)),
        standaloneWrapper());
  }
}
