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
 * Runs {@code org.apache.spark.deploy.SparkSubmit} as a child JVM, as the {@code spark-submit} script
 * would, in client mode: the driver is that JVM, the executors are started by the cluster's workers.
 */
public final class SparkSubmitter {

    private static final AtomicInteger RUNS = new AtomicInteger();

    private final ItSettings settings;
    private final SparkHome sparkHome;

    public SparkSubmitter(ItSettings settings, SparkHome sparkHome) {
        this.settings = settings;
        this.sparkHome = sparkHome;
    }

    /**
     * One application to submit.
     *
     * @param name        application name, also the log file's name
     * @param master      {@code spark://host:port} (or {@code local[2]})
     * @param mainClass   the application's main class
     * @param appJar      the primary resource
     * @param extraJars   shipped with {@code --jars} to the driver and every executor
     * @param conf        {@code --conf} entries, in order
     * @param args        the application's arguments
     */
    public record Submission(String name, String master, String mainClass, Path appJar, List<Path> extraJars,
                             Map<String, String> conf, List<String> args) {
        public Submission {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(master, "master");
            Objects.requireNonNull(mainClass, "mainClass");
            Objects.requireNonNull(appJar, "appJar");
            extraJars = List.copyOf(extraJars);
            conf = new LinkedHashMap<>(conf);
            args = List.copyOf(args);
        }
    }

    /** What a run did; {@code exitCode} is null when it was killed at the timeout. */
    public record Result(List<String> command, Integer exitCode, String output, Path log, Duration elapsed) {
        public boolean timedOut() {
            return exitCode == null;
        }

        /** For assertion messages: the command and the end of the output. */
        public String describe() {
            List<String> lines = output.lines().toList();
            return "exit " + (timedOut() ? "none (timed out)" : exitCode) + " after " + elapsed.toMillis() + " ms, log "
                    + log + "\ncommand: " + String.join(" ", command) + "\noutput tail:\n"
                    + String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        }
    }

    /**
     * The settings every submission here needs: loopback driver, no UI (a port and a second of start-up
     * saved), DJL offline on executors, and waiting for all executors before the first task, so work is
     * spread over the cluster instead of landing on whichever executor registered first.
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
        List<String> command = new ArrayList<>();
        command.add(SparkStandaloneCluster.javaExecutable());
        // Client mode: the driver is this JVM, so its heap is set here (spark.driver.memory is too late).
        command.add("-Xmx1g");
        command.addAll(settings.sparkJvmArgs());
        command.addAll(settings.djlJvmArgs());
        command.add("-cp");
        command.add(sparkHome.classpath());
        command.add("org.apache.spark.deploy.SparkSubmit");
        command.add("--master");
        command.add(s.master());
        command.add("--deploy-mode");
        command.add("client");
        command.add("--name");
        command.add(s.name());
        command.add("--class");
        command.add(s.mainClass());
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

    /** Runs the submission to completion, or kills it (and its children) at {@code timeout}. */
    public Result run(Submission s, Duration timeout) throws InterruptedException {
        List<String> command = command(s);
        Path log = settings.logDir().resolve("submit-" + RUNS.incrementAndGet() + "-" + s.name() + ".log");
        long start = System.nanoTime();
        try (ChildProcess driver = ChildProcess.start("spark-submit " + s.name(), command,
                sparkHome.environment(), settings.buildDir().resolve("it-driver"), log)) {
            Integer exit = driver.waitFor(timeout);
            Duration elapsed = Duration.ofNanos(System.nanoTime() - start);
            return new Result(command, exit, driver.output(), log, elapsed);
        }
    }
}
