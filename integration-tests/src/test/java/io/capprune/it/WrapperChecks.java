package io.capprune.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Checks that a submission ran the command it was expected to run: the arguments bin/spark-submit
 * received (logged by {@link SparkHome}'s script) are exactly those of the printed command (a
 * deploy/ wrapper's --dry-run, the Airflow DAG's rendered command), and the driver JVM that Spark's
 * launcher started got the heap and the java options that command asks for.
 */
final class WrapperChecks {

  /** What bin/spark-submit and bin/spark-class logged for one run. */
  record SubmitLog(List<String> submitArgs, List<String> javaCommand) {
    static SubmitLog read(Path file) {
      List<String> lines;
      try {
        lines = Files.readAllLines(file);
      } catch (IOException e) {
        throw new UncheckedIOException(
            "no spark-submit log " + file + ": bin/spark-submit never ran", e);
      }
      return new SubmitLog(
          record(lines, SparkHome.SUBMIT_ARGS_HEADER, file),
          record(lines, SparkHome.JAVA_COMMAND_HEADER, file));
    }

    private static List<String> record(List<String> lines, String header, Path file) {
      int start = lines.indexOf(header);
      assertTrue(start >= 0, () -> "no '" + header + "' in " + file + ": " + lines);
      // exactly one submission per log: a second spark-submit would be a wrapper bug
      assertEquals(
          start, lines.lastIndexOf(header), () -> "two '" + header + "' records in " + file);
      int end = lines.subList(start, lines.size()).indexOf(SparkHome.END) + start;
      return List.copyOf(lines.subList(start + 1, end));
    }
  }

  private WrapperChecks() {}

  /**
   * {@code printed} is {@code [env NAME=VALUE...] SPARK_SUBMIT ARGS...}; {@code sparkSubmit} is how
   * it names spark-submit (an absolute path, or a bare name found on PATH). Returns the submit log.
   */
  static SubmitLog assertRanAsPrinted(
      SparkSubmitter.Result run, String sparkSubmit, List<String> expectedEnv) {
    List<String> printed = run.dryRun();
    assertTrue(!printed.isEmpty(), "no printed command to compare with");
    int i = 0;
    List<String> env = new ArrayList<>();
    if (printed.get(0).equals("env")) {
      i = 1;
      while (i < printed.size() && printed.get(i).matches("[A-Za-z_][A-Za-z0-9_]*=.*")) {
        env.add(printed.get(i++));
      }
    }
    assertTrue(env.containsAll(expectedEnv), () -> "environment " + env + " lacks " + expectedEnv);
    assertEquals(
        sparkSubmit, printed.get(i), () -> "spark-submit of the printed command " + printed);
    List<String> args = printed.subList(i + 1, printed.size());
    SubmitLog log = SubmitLog.read(run.submitLog());
    assertEquals(
        args,
        log.submitArgs(),
        "the arguments bin/spark-submit received differ from the printed command");

    // The driver JVM (client mode): the heap and java options the command asks for, then the
    // application.
    List<String> java = log.javaCommand();
    String driverMemory = valueOf(args, "--driver-memory");
    assertTrue(
        java.contains("-Xmx" + driverMemory),
        () -> "driver JVM without -Xmx" + driverMemory + ": " + java);
    for (String conf : valuesOf(args, "--conf")) {
      if (conf.startsWith("spark.driver.extraJavaOptions=")) {
        for (String option : conf.substring(conf.indexOf('=') + 1).trim().split("\\s+")) {
          assertTrue(java.contains(option), () -> "driver JVM without " + option + ": " + java);
        }
      }
    }
    assertTrue(java.contains("org.apache.spark.deploy.SparkSubmit"), java::toString);
    int appJar = args.indexOf(primaryResource(args));
    List<String> application = args.subList(appJar, args.size());
    assertEquals(
        application,
        java.subList(java.size() - application.size(), java.size()),
        "the application jar and its arguments reach SparkSubmit unchanged");
    return log;
  }

  private static String valueOf(List<String> args, String option) {
    List<String> values = valuesOf(args, option);
    assertTrue(!values.isEmpty(), () -> "no " + option + " in " + args);
    return values.get(values.size() - 1);
  }

  private static List<String> valuesOf(List<String> args, String option) {
    List<String> out = new ArrayList<>();
    for (int k = 0; k + 1 < args.size(); k++) {
      if (args.get(k).equals(option)) {
        out.add(args.get(k + 1));
      }
    }
    return out;
  }

  /** The primary resource: the first argument that is neither an option nor an option's value. */
  private static String primaryResource(List<String> args) {
    for (int k = 0; k < args.size(); k++) {
      String a = args.get(k);
      if (a.startsWith("--")) {
        if (!a.equals("--verbose") && !a.equals("--supervise")) {
          k++; // every other spark-submit option takes a value
        }
        continue;
      }
      return a;
    }
    throw new AssertionError("no application jar in " + args);
  }
}
