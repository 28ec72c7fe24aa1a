package io.capprune.it;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Submits applications in client mode (the driver is the submitting process, the executors are
 * started by the cluster's workers) the way users do: through {@code SPARK_HOME/bin/spark-submit}
 * ({@link SparkHome}), or through one of deploy/'s wrappers, which builds the spark-submit command
 * itself. A wrapper submission is first run with {@code --dry-run}; the arguments bin/spark-submit
 * then really receives are logged ({@link SparkHome#SUBMIT_LOG_ENV}), so a test can check that what
 * ran is what the wrapper prints ({@link WrapperChecks}).
 */
public final class SparkSubmitter {

  private static final AtomicInteger RUNS = new AtomicInteger();

  /** The driver's heap in every submission here (client mode: the heap of the spark-submit JVM). */
  public static final String DRIVER_MEMORY = "1g";

  private final ItSettings settings;
  private final SparkHome sparkHome;

  public SparkSubmitter(ItSettings settings, SparkHome sparkHome) {
    this.settings = settings;
    this.sparkHome = sparkHome;
  }

  public SparkHome sparkHome() {
    return sparkHome;
  }

  /**
   * One application to submit.
   *
   * @param name application name, also the log file's name
   * @param master {@code spark://host:port} (or {@code local[2]})
   * @param mainClass the application's main class
   * @param appJar the primary resource
   * @param extraJars shipped with {@code --jars} to the driver and every executor
   * @param conf {@code --conf} entries, in order
   * @param args the application's arguments
   * @param driverJvmArgs options of the driver JVM ({@code --driver-java-options})
   * @param wrapper a deploy/spark-submit-*.sh wrapper to submit through, or null for
   *     bin/spark-submit
   */
  public record Submission(
      String name,
      String master,
      String mainClass,
      Path appJar,
      List<Path> extraJars,
      Map<String, String> conf,
      List<String> args,
      List<String> driverJvmArgs,
      Path wrapper) {
    public Submission {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(master, "master");
      Objects.requireNonNull(mainClass, "mainClass");
      Objects.requireNonNull(appJar, "appJar");
      extraJars = List.copyOf(extraJars);
      conf = new LinkedHashMap<>(conf);
      args = List.copyOf(args);
      driverJvmArgs = List.copyOf(driverJvmArgs);
    }

    public Submission(
        String name,
        String master,
        String mainClass,
        Path appJar,
        List<Path> extraJars,
        Map<String, String> conf,
        List<String> args) {
      this(name, master, mainClass, appJar, extraJars, conf, args, List.of(), null);
    }

    /** The same submission under another name, with more application arguments (e.g. --resume). */
    public Submission rerun(String newName, List<String> moreArgs) {
      List<String> all = new ArrayList<>(args);
      all.addAll(moreArgs);
      return new Submission(
          newName, master, mainClass, appJar, extraJars, conf, all, driverJvmArgs, wrapper);
    }
  }

  /**
   * What a run did; {@code exitCode} is null when it was killed at the timeout. {@code dryRun} is
   * the wrapper's --dry-run output (empty without a wrapper), {@code submitLog} the file
   * bin/spark-submit and bin/spark-class logged their arguments and java command to.
   */
  public record Result(
      List<String> command,
      Integer exitCode,
      String output,
      Path log,
      Duration elapsed,
      List<String> dryRun,
      Path submitLog) {
    public boolean timedOut() {
      return exitCode == null;
    }

    /** For assertion messages: the command and the end of the output. */
    public String describe() {
      List<String> lines = output.lines().toList();
      return "exit "
          + (timedOut() ? "none (timed out)" : exitCode)
          + " after "
          + elapsed.toMillis()
          + " ms, log "
          + log
          + "\ncommand: "
          + String.join(" ", command)
          + "\noutput tail:\n"
          + String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    }
  }

  /**
   * The settings every submission here needs: loopback driver, no UI (a port and a second of
   * start-up saved), DJL offline on executors, and waiting for all executors before the first task,
   * so work is spread over the cluster instead of landing on whichever executor registered first.
   */
  public static Map<String, String> defaultConf(ItSettings settings, int executors) {
    Map<String, String> conf = new LinkedHashMap<>();
    conf.put("spark.driver.host", "127.0.0.1");
    conf.put("spark.driver.bindAddress", "127.0.0.1");
    conf.put("spark.ui.enabled", "false");
    conf.put("spark.executor.cores", "1");
    conf.put("spark.executor.memory", "1g");
    conf.put("spark.cores.max", Integer.toString(executors));
    conf.put("spark.executor.extraJavaOptions", String.join(" ", settings.djlJvmArgs()));
    conf.put("spark.executorEnv.DJL_OFFLINE", "true");
    conf.put("spark.scheduler.minRegisteredResourcesRatio", "1.0");
    conf.put("spark.scheduler.maxRegisteredResourcesWaitingTime", "60s");
    return conf;
  }

  /** The full command line, as a list so a test can print or compare it. */
  public List<String> command(Submission s) {
    return s.wrapper() == null ? sparkSubmitCommand(s) : wrapperCommand(s, false);
  }

  /** {@code SPARK_HOME/bin/spark-submit} with the submission's options, in client mode. */
  private List<String> sparkSubmitCommand(Submission s) {
    List<String> command = new ArrayList<>();
    command.add(sparkHome.sparkSubmit().toString());
    command.add("--master");
    command.add(s.master());
    command.add("--deploy-mode");
    command.add("client");
    command.add("--name");
    command.add(s.name());
    command.add("--class");
    command.add(s.mainClass());
    command.add("--driver-memory");
    command.add(DRIVER_MEMORY);
    List<String> driverOptions = new ArrayList<>(settings.djlJvmArgs());
    driverOptions.addAll(s.driverJvmArgs());
    if (!driverOptions.isEmpty()) {
      command.add("--driver-java-options");
      command.add(String.join(" ", driverOptions));
    }
    for (Map.Entry<String, String> e : s.conf().entrySet()) {
      command.add("--conf");
      command.add(e.getKey() + "=" + e.getValue());
    }
    if (!s.extraJars().isEmpty()) {
      command.add("--jars");
      command.add(String.join(",", s.extraJars().stream().map(Path::toString).toList()));
    }
    command.add(s.appJar().toString());
    command.addAll(s.args());
    return List.copyOf(command);
  }

  /**
   * The wrapper's command line for a submission of cap-prune: the sizing keys become the wrapper's
   * options ({@code --executors}, {@code --executor-cores}, {@code --executor-memory}), the one
   * extra jar is the libtorch natives jar, a log4j2 configuration file is {@code --log-config},
   * everything else {@code --spark-conf}; the application's arguments go after {@code --}.
   */
  List<String> wrapperCommand(Submission s, boolean dryRun) {
    if (!s.mainClass().equals(CapJob.MAIN_CLASS)) {
      throw new IllegalArgumentException(
          s.wrapper() + " submits " + CapJob.MAIN_CLASS + " only, not " + s.mainClass());
    }
    if (s.extraJars().size() != 1) {
      throw new IllegalArgumentException(
          "the wrapper ships exactly one extra jar (--natives-jar), got " + s.extraJars());
    }
    Map<String, String> conf = new LinkedHashMap<>(s.conf());
    String cores =
        Objects.requireNonNull(conf.remove("spark.executor.cores"), "spark.executor.cores");
    String memory =
        Objects.requireNonNull(conf.remove("spark.executor.memory"), "spark.executor.memory");
    int coresMax =
        Integer.parseInt(Objects.requireNonNull(conf.remove("spark.cores.max"), "spark.cores.max"));
    List<String> command =
        new ArrayList<>(
            List.of(
                s.wrapper().toString(),
                "--master",
                s.master(),
                "--deploy-mode",
                "client",
                "--app-jar",
                s.appJar().toString(),
                "--natives-jar",
                s.extraJars().get(0).toString(),
                "--executors",
                Integer.toString(coresMax / Integer.parseInt(cores)),
                "--executor-cores",
                cores,
                "--executor-memory",
                memory,
                "--driver-memory",
                DRIVER_MEMORY,
                "--name",
                s.name()));
    for (String option : s.driverJvmArgs()) {
      if (!option.startsWith("-Dlog4j2.configurationFile=")) {
        throw new IllegalArgumentException(
            "the wrapper sets the driver's JVM options itself; only a log4j2 "
                + "configuration (--log-config) can be given, not "
                + option);
      }
      command.add("--log-config");
      command.add(option.substring("-Dlog4j2.configurationFile=".length()));
    }
    conf.forEach(
        (k, v) -> {
          command.add("--spark-conf");
          command.add(k + "=" + v);
        });
    if (dryRun) {
      command.add("--dry-run");
    }
    command.add("--");
    command.addAll(s.args());
    return List.copyOf(command);
  }

  /**
   * The environment of a submission: the Spark processes' ({@link SparkHome#environment()}) plus
   * spark-submit on PATH.
   */
  public Map<String, String> environment() {
    Map<String, String> env = new LinkedHashMap<>(sparkHome.environment());
    env.put(
        "PATH",
        sparkHome.dir().resolve("bin")
            + java.io.File.pathSeparator
            + System.getenv().getOrDefault("PATH", ""));
    // The wrappers pick SPARK_SUBMIT before SPARK_HOME; one inherited from the caller would bypass
    // ours.
    env.put("SPARK_SUBMIT", sparkHome.sparkSubmit().toString());
    return env;
  }

  /**
   * Runs the wrapper with --dry-run: the spark-submit command it would run, one argument per line.
   */
  public List<String> dryRun(Submission s) throws InterruptedException {
    List<String> command = wrapperCommand(s, true);
    Path log =
        settings
            .logDir()
            .resolve("submit-" + RUNS.incrementAndGet() + "-" + s.name() + "-dry-run.log");
    try (ChildProcess p =
        ChildProcess.start(
            "dry run " + s.name(),
            command,
            environment(),
            settings.buildDir().resolve("it-driver"),
            log)) {
      Integer exit = p.waitFor(Duration.ofSeconds(30));
      if (exit == null || exit != 0) {
        throw new IllegalStateException(
            "dry run of " + s.wrapper() + " exited " + exit + ": " + command + "\n" + p.output());
      }
      // stderr is merged into the log: warnings start with the script's name, never an argument
      String name = s.wrapper().getFileName().toString() + ": ";
      return p.output().lines().filter(l -> !l.startsWith(name)).toList();
    }
  }

  /** Runs the submission to completion, or kills it (and its children) at {@code timeout}. */
  public Result run(Submission s, Duration timeout) throws InterruptedException {
    try (Running running = start(s)) {
      return running.await(timeout);
    }
  }

  /**
   * Starts the submission and returns at once, for tests that act while it runs (kill an executor,
   * kill the driver). Close it to kill what is left.
   */
  public Running start(Submission s) throws InterruptedException {
    List<String> dryRun = s.wrapper() == null ? List.of() : dryRun(s);
    return start(s.name(), command(s), Map.of(), dryRun);
  }

  /**
   * Starts any submitting command ({@code spark-submit ...}, {@code env K=V spark-submit ...}, a
   * wrapper) with the Spark environment plus {@code extraEnv}; {@code dryRun} is what the command
   * was expected to run, kept in the result.
   */
  public Running start(
      String name, List<String> command, Map<String, String> extraEnv, List<String> dryRun) {
    int run = RUNS.incrementAndGet();
    Path log = settings.logDir().resolve("submit-" + run + "-" + name + ".log");
    Path submitLog = settings.logDir().resolve("submit-" + run + "-" + name + ".argv");
    try {
      // the scripts append; a file of an earlier build's run (same counter, same name) must go
      java.nio.file.Files.deleteIfExists(submitLog);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException("cannot remove " + submitLog, e);
    }
    Map<String, String> env = new LinkedHashMap<>(environment());
    env.put(SparkHome.SUBMIT_LOG_ENV, submitLog.toString());
    env.putAll(extraEnv);
    long start = System.nanoTime();
    ChildProcess driver =
        ChildProcess.start(
            "spark-submit " + name, command, env, settings.buildDir().resolve("it-driver"), log);
    return new Running(command, driver, start, dryRun, submitLog);
  }

  /**
   * A submission in progress: its driver JVM (client mode). The wrapper, bin/spark-submit and
   * bin/spark-class each exec the next, so the process started is the driver JVM in the end.
   */
  public static final class Running implements AutoCloseable {
    private final List<String> command;
    private final ChildProcess driver;
    private final long startNanos;
    private final List<String> dryRun;
    private final Path submitLog;

    private Running(
        List<String> command,
        ChildProcess driver,
        long startNanos,
        List<String> dryRun,
        Path submitLog) {
      this.command = command;
      this.driver = driver;
      this.startNanos = startNanos;
      this.dryRun = List.copyOf(dryRun);
      this.submitLog = submitLog;
    }

    public ChildProcess driver() {
      return driver;
    }

    /**
     * Waits until {@code marker} appears in the driver's log; false if it exits or the timeout
     * passes first.
     */
    public boolean awaitOutput(String marker, Duration timeout) throws InterruptedException {
      long deadline = System.nanoTime() + timeout.toNanos();
      while (System.nanoTime() < deadline) {
        if (driver.output().contains(marker)) {
          return true;
        }
        if (!driver.isAlive()) {
          return driver.output().contains(marker);
        }
        Thread.sleep(200);
      }
      return false;
    }

    /** Waits for exit; a run still going at {@code timeout} is killed and reported as timed out. */
    public Result await(Duration timeout) throws InterruptedException {
      Integer exit = driver.waitFor(timeout);
      Duration elapsed = Duration.ofNanos(System.nanoTime() - startNanos);
      if (exit == null) {
        driver.close();
      }
      return new Result(command, exit, driver.output(), driver.log(), elapsed, dryRun, submitLog);
    }

    @Override
    public void close() {
      driver.close();
    }
  }
}
