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
     * @param driverJvmArgs options of the driver JVM (what {@code --driver-java-options} gives in client mode)
     */
    public record Submission(String name, String master, String mainClass, Path appJar, List<Path> extraJars,
                             Map<String, String> conf, List<String> args, List<String> driverJvmArgs) {
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

        public Submission(String name, String master, String mainClass, Path appJar, List<Path> extraJars,
                          Map<String, String> conf, List<String> args) {
            this(name, master, mainClass, appJar, extraJars, conf, args, List.of());
        }

        /** The same submission under another name, with more application arguments (e.g. --resume). */
        public Submission rerun(String newName, List<String> moreArgs) {
            List<String> all = new ArrayList<>(args);
            all.addAll(moreArgs);
            return new Submission(newName, master, mainClass, appJar, extraJars, conf, all, driverJvmArgs);
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
        command.addAll(s.driverJvmArgs());
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
        try (Running running = start(s)) {
            return running.await(timeout);
        }
    }

    /**
     * Starts the submission and returns at once, for tests that act while it runs (kill an executor,
     * kill the driver). Close it to kill what is left.
     */
    public Running start(Submission s) {
        List<String> command = command(s);
        Path log = settings.logDir().resolve("submit-" + RUNS.incrementAndGet() + "-" + s.name() + ".log");
        long start = System.nanoTime();
        ChildProcess driver = ChildProcess.start("spark-submit " + s.name(), command,
                sparkHome.environment(), settings.buildDir().resolve("it-driver"), log);
        return new Running(command, driver, start);
    }

    /** A submission in progress: its driver JVM (client mode). */
    public static final class Running implements AutoCloseable {
        private final List<String> command;
        private final ChildProcess driver;
        private final long startNanos;

        private Running(List<String> command, ChildProcess driver, long startNanos) {
            this.command = command;
            this.driver = driver;
            this.startNanos = startNanos;
        }

        public ChildProcess driver() {
            return driver;
        }

        /** Waits until {@code marker} appears in the driver's log; false if it exits or the timeout passes first. */
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
            return new Result(command, exit, driver.output(), driver.log(), elapsed);
        }

        @Override
        public void close() {
            driver.close();
        }
    }
}
