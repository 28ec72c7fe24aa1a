package io.capprune.spark.cli;

import java.io.File;
import java.util.ArrayList;
import java.util.List;

/**
 * The command line of {@code bin/cap-prune} and {@code spark-submit ... cap-prune.jar}: {@code
 * <command> [positional...] [--config FILE] [--conf key=value]... [--resume] [--overwrite] [--json]
 * [--master URL]}. Flags are shorthands for configuration keys, so everything a flag can say can
 * also be said in HOCON.
 */
public record CliArgs(
    String command,
    List<String> positional,
    File configFile,
    List<String> overrides,
    boolean json) {

  public static CliArgs parse(String[] args) {
    if (args.length == 0) {
      return new CliArgs("help", List.of(), null, List.of(), false);
    }
    String command = args[0];
    List<String> positional = new ArrayList<>();
    List<String> overrides = new ArrayList<>();
    File configFile = null;
    boolean json = false;
    for (int i = 1; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--config" -> configFile = new File(value(args, ++i, a));
        case "--conf", "-c" -> overrides.add(value(args, ++i, a));
        case "--resume" -> overrides.add("cap.resume=true");
        case "--overwrite" -> overrides.add("cap.overwrite=true");
        case "--master" -> overrides.add("cap.spark.master=\"" + value(args, ++i, a) + "\"");
        case "--output" -> overrides.add("cap.output=\"" + value(args, ++i, a) + "\"");
        case "--json" -> json = true;
        default -> {
          if (a.startsWith("--conf=")) {
            overrides.add(a.substring("--conf=".length()));
          } else if (a.startsWith("--")) {
            throw new UsageException("unknown option " + a);
          } else {
            positional.add(a);
          }
        }
      }
    }
    return new CliArgs(command, List.copyOf(positional), configFile, List.copyOf(overrides), json);
  }

  private static String value(String[] args, int i, String flag) {
    if (i >= args.length) {
      throw new UsageException(flag + " needs a value");
    }
    return args[i];
  }

  /** A command line that cannot be understood. */
  public static final class UsageException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public UsageException(String message) {
      super(message);
    }
  }
}
