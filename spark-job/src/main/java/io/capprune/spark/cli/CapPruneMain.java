package io.capprune.spark.cli;

import io.capprune.core.checkpoint.ModelInspection;
import io.capprune.spark.config.ConfigValidationException;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.io.Storage;
import io.capprune.spark.pipeline.CapPipeline;
import io.capprune.spark.pipeline.DemoInputs;
import io.capprune.spark.pipeline.SparkContexts;
import io.capprune.spark.report.RunComparison;
import java.io.PrintStream;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The entry point of {@code bin/cap-prune} and of {@code spark-submit --class
 * io.capprune.spark.cli.CapPruneMain cap-prune.jar <command> ...}.
 */
public final class CapPruneMain {
  private static final Logger LOG = LoggerFactory.getLogger(CapPruneMain.class);
  static final String USAGE =
      """
      usage: cap-prune <command> [options]

      commands:
        demo                      generate a small model and task, then finetune, prune, evaluate, export
        run                       finetune, prune, evaluate and export; skips a stage whose output exists
        finetune                  train the teacher from the pre-trained checkpoint (cap.model)
        prune                     prune the model with cap.prune.method (cap-movement, cap-soft, ...,
                                  cap-structured and structured remove heads and FFN neurons)
        evaluate                  dev metrics of the teacher and the pruned model
        export                    write the pruned model in Hugging Face layout to <output>/model
                                  (structured methods: physically smaller, heads and neurons removed)
        inspect <checkpoint> [--json]
                                  configuration, parameter counts, sparsity, heads and neurons kept per layer
        compare <run-dir>...      the dev metrics, sparsity and time of finished runs side by side (markdown)
        config-reference          every configuration key with its default and meaning (markdown)
        gpu-check                 one task per executor: creates a tensor on the device a training task
                                  would use and prints what each executor sees (GPU addresses,
                                  CUDA_VISIBLE_DEVICES, device, GPU count, libtorch); run it before a long job

      options:
        --config FILE             a HOCON file layered over conf/reference.conf and the task preset
        --conf key=value          override one key (cap. may be omitted), repeatable
        --output DIR              shorthand for --conf output=DIR
        --resume                  continue from the newest committed snapshot
        --overwrite               replace what the output directory holds
        --master URL              Spark master when not launched by spark-submit
      """;

  private CapPruneMain() {}

  public static void main(String[] args) {
    int code = run(args, System.out, System.err);
    if (code != 0) {
      System.exit(code);
    }
  }

  /** Runs one command; returns the process exit code (0 ok, 1 failed, 2 usage). */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    CliArgs cli;
    try {
      cli = CliArgs.parse(args);
    } catch (CliArgs.UsageException e) {
      err.println("cap-prune: " + e.getMessage());
      err.println(USAGE);
      return 2;
    }
    try {
      switch (cli.command()) {
        case "help", "-h", "--help" -> {
          out.println(USAGE);
          return 0;
        }
        case "inspect" -> {
          return inspect(cli, out, err);
        }
        case "compare" -> {
          return compare(cli, out, err);
        }
        case "config-reference" -> {
          out.print(io.capprune.spark.config.ConfigReference.markdown());
          return 0;
        }
        case "demo", "run", "finetune", "prune", "evaluate", "export" -> {
          return pipeline(cli, out, err);
        }
        case "gpu-check" -> {
          return gpuCheck(cli, out, err);
        }
        default -> {
          err.println("cap-prune: unknown command '" + cli.command() + "'");
          err.println(USAGE);
          return 2;
        }
      }
    } catch (ConfigValidationException e) {
      err.println("cap-prune: configuration error: " + e.getMessage());
      return 2;
    }
  }

  /** The training commands: configuration checked, inputs validated, then Spark. */
  private static int pipeline(CliArgs cli, PrintStream out, PrintStream err) {
    List<String> overrides = new ArrayList<>();
    if (cli.command().equals("demo")) {
      JobConfig given = JobConfig.load(cli.configFile(), cli.overrides());
      Path root =
          Paths.get(given.output().isBlank() ? "cap-output/demo" : given.output()).toAbsolutePath();
      Path inputs = root.resolve("inputs");
      DemoInputs.writeTo(inputs, given.seed());
      overrides.addAll(DemoInputs.overrides(inputs));
      overrides.add("output=\"" + root.resolve("run") + "\"");
      for (String o : cli.overrides()) {
        if (!o.replace("cap.", "").startsWith("output=")) {
          overrides.add(o);
        }
      }
    } else {
      overrides.addAll(cli.overrides());
    }
    JobConfig config = JobConfig.load(cli.configFile(), overrides);
    // GPUs, partitions and executors against spark-submit's settings: a combination that cannot
    // work
    // stops here, before the inputs are read and before Spark starts (exit status 2, naming the
    // key).
    SparkContexts.plan(config);
    // Before the first progress line: under a plain spark-submit the root logger may be at WARN.
    if (ProgressLogging.ensureInfo() == ProgressLogging.Outcome.PINNED) {
      LOG.info(
          "logger {} set to {} for the progress lines (the log configuration does not name it)",
          ProgressLogging.LOGGER,
          LOG.isDebugEnabled() ? "DEBUG or finer" : "INFO");
    }
    LOG.info("effective configuration (secrets masked):\n{}", config.rendered());
    CapPipeline.Validated validated;
    try {
      validated = CapPipeline.validate(config, sparkHadoopConfiguration());
    } catch (RuntimeException e) {
      err.println("cap-prune: " + message(e));
      return 1;
    }
    long t0 = System.nanoTime();
    try (JavaSparkContext sc =
        SparkContexts.create(config, "cap-prune " + cli.command() + " " + config.task())) {
      CapPipeline p = new CapPipeline(validated, sc);
      switch (cli.command()) {
        case "demo", "run" -> p.run();
        case "finetune" -> {
          Map<String, Object> scored = new java.util.LinkedHashMap<>();
          scored.put("teacher", p.finetune());
          scored.put("scored", Map.of("teacher", CapPipeline.TEACHER_DIR + "/"));
          out.println("finetune: dev metrics of " + CapPipeline.describeScores(scored));
        }
        case "prune" -> p.prune();
        case "evaluate" ->
            out.println(
                "evaluate: dev metrics of "
                    + validated.out().root()
                    + "\n"
                    + CapPipeline.describeScores(p.evaluate()));
        case "export" -> p.export();
        default -> throw new IllegalStateException(cli.command());
      }
    } catch (RuntimeException e) {
      LOG.error("cap-prune " + cli.command() + " failed", e);
      err.println("cap-prune: " + cli.command() + " failed: " + message(e));
      return 1;
    }
    LOG.info(
        "cap-prune {}: done in {} s; output in {}",
        cli.command(),
        String.format("%.0f", (System.nanoTime() - t0) / 1e9),
        validated.out().root());
    return 0;
  }

  private static int gpuCheck(CliArgs cli, PrintStream out, PrintStream err) {
    if (!cli.positional().isEmpty()) {
      err.println("cap-prune: gpu-check takes no arguments besides --config/--conf/--master");
      return 2;
    }
    JobConfig config = JobConfig.load(cli.configFile(), cli.overrides());
    SparkContexts.plan(config);
    ProgressLogging.ensureInfo();
    try {
      return GpuCheck.run(config, out, err);
    } catch (io.capprune.spark.config.ConfigValidationException e) {
      throw e;
    } catch (RuntimeException e) {
      LOG.error("cap-prune gpu-check failed", e);
      err.println("cap-prune: gpu-check failed: " + message(e));
      return 1;
    }
  }

  /**
   * The Hadoop settings spark-submit was given as {@code spark.hadoop.*} (it passes them to the
   * driver as system properties before main runs). The driver reads the checkpoint and writes
   * snapshots and the model before and outside any SparkContext, so without this it would use
   * Hadoop's defaults: S3A settings given only as spark.hadoop.fs.s3a.* would reach the executors
   * but not the driver, and HDFS files would ask for the default replication.
   */
  static Configuration sparkHadoopConfiguration() {
    Configuration conf = new Configuration();
    for (scala.Tuple2<String, String> e : new org.apache.spark.SparkConf().getAll()) {
      if (e._1().startsWith("spark.hadoop.")) {
        conf.set(
            e._1().substring("spark.hadoop.".length()),
            e._2(),
            "spark.hadoop.* (spark-submit --conf)");
      }
    }
    return conf;
  }

  /** The innermost message that says something, for a one-line error. */
  private static String message(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null
        && t.getCause() != t
        && (t.getMessage() == null || t instanceof org.apache.spark.SparkException)) {
      t = t.getCause();
    }
    return t.getMessage() == null ? t.toString() : t.getMessage();
  }

  private static int compare(CliArgs cli, PrintStream out, PrintStream err) {
    if (cli.positional().isEmpty()) {
      err.println("cap-prune: compare needs one or more run directories");
      return 2;
    }
    JobConfig config = JobConfig.load(cli.configFile(), cli.overrides());
    Configuration hadoop = Storage.hadoopConfiguration(sparkHadoopConfiguration(), config.s3());
    try {
      out.print(RunComparison.markdown(RunComparison.readAll(cli.positional(), hadoop)));
      return 0;
    } catch (java.io.IOException | RuntimeException e) {
      err.println("cap-prune: compare: " + message(e));
      return 1;
    }
  }

  private static int inspect(CliArgs cli, PrintStream out, PrintStream err) {
    JobConfig config = JobConfig.load(cli.configFile(), cli.overrides());
    Configuration hadoop = Storage.hadoopConfiguration(sparkHadoopConfiguration(), config.s3());
    List<String> inspectArgs = new ArrayList<>(cli.positional());
    if (cli.json()) {
      inspectArgs.add("--json");
    }
    return ModelInspection.run(inspectArgs.toArray(String[]::new), out, err, hadoop);
  }
}
