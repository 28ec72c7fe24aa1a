package io.capprune.spark.cli;

import io.capprune.core.checkpoint.ModelInspection;
import io.capprune.spark.config.ConfigValidationException;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.io.Storage;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;

/**
 * The entry point of {@code bin/cap-prune} and of {@code spark-submit --class
 * io.capprune.spark.cli.CapPruneMain cap-prune.jar <command> ...}.
 */
public final class CapPruneMain {
  static final String USAGE = """
      usage: cap-prune <command> [options]

      commands:
        demo                      generate a small model and task, then finetune, prune, evaluate, export
        run                       finetune, prune, evaluate and export; skips a stage whose output exists
        finetune                  train the teacher from the pre-trained checkpoint (cap.model)
        prune                     prune the model with cap.prune.method (cap-movement, cap-soft, ...)
        evaluate                  dev metrics of the teacher and the pruned model
        export                    write the pruned model in Hugging Face layout to <output>/model
        inspect <checkpoint> [--json]
                                  configuration, parameter counts and sparsity of a checkpoint

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

  private static int inspect(CliArgs cli, PrintStream out, PrintStream err) {
    JobConfig config = JobConfig.load(cli.configFile(), cli.overrides());
    Configuration hadoop = Storage.hadoopConfiguration(new Configuration(), config.s3());
    List<String> inspectArgs = new ArrayList<>(cli.positional());
    if (cli.json()) {
      inspectArgs.add("--json");
    }
    return ModelInspection.run(inspectArgs.toArray(String[]::new), out, err, hadoop);
  }
}
