package io.capprune.it;

import java.io.IOException;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * The whole stack one IT class shares: s3proxy, HDFS and a Spark master with two 1-core workers,
 * started at once (start-up is mostly waiting), a submitter, and a meter of time and memory.
 * Closing it stops everything that did start, also after a half-failed start, and writes the
 * measurements to {@code it-logs/<name>-measurements.txt}.
 */
public final class ItStack implements AutoCloseable {

  public static final String BUCKET = "it-bucket";

  private final String name;
  private final ItSettings settings;
  private final ProcessMeter meter = new ProcessMeter(250);
  private final long t0 = System.nanoTime();
  private final Map<String, String> measurements =
      Collections.synchronizedMap(new LinkedHashMap<>());
  private CompletableFuture<SparkStandaloneCluster> clusterStart;
  private CompletableFuture<HdfsCluster> hdfsStart;
  private CompletableFuture<S3Server> s3Start;
  private SparkStandaloneCluster cluster;
  private HdfsCluster hdfs;
  private S3Server s3;
  private SparkSubmitter submitter;

  private ItStack(String name, ItSettings settings) {
    this.name = name;
    this.settings = settings;
  }

  /**
   * Starts everything; on failure what started is closed before the exception leaves. Missing build
   * outputs fail first, before a minute of start-up.
   */
  public static ItStack start(String name) throws Exception {
    ItSettings settings = ItSettings.fromSystemProperties();
    ItSettings.requireFile(
        settings.appJar(),
        "the spark-job module builds it; run mvn -B -pl integration-tests -am verify");
    ItSettings.requireFile(
        CapJob.nativeJar(settings),
        "the spark-job module's copy-dependencies puts it there; run mvn -B -pl integration-tests -am verify");
    ItSettings.requireFile(
        settings.s3proxyJar(),
        "run mvn -pl integration-tests -am test-compile (maven-dependency-plugin copies s3proxy there)");
    ItStack stack = new ItStack(name, settings);
    try {
      SparkHome home =
          SparkHome.create(
              settings.sparkClasspathFile(), settings.buildDir().resolve("it-spark-home"));
      stack.clusterStart =
          stack.startAsync(
              "master + 2 workers up (s)",
              () ->
                  SparkStandaloneCluster.start(
                      settings, home, 2, 1, "1536m", Duration.ofSeconds(120)));
      stack.s3Start =
          stack.startAsync(
              "s3proxy up (s)", () -> S3Server.start(settings, BUCKET, Duration.ofSeconds(90)));
      stack.hdfsStart =
          stack.startAsync(
              "HDFS up (s)",
              () -> HdfsCluster.start(settings.buildDir().resolve("it-hdfs-" + name)));
      stack.s3 = await(stack.s3Start);
      stack.hdfs = await(stack.hdfsStart);
      stack.cluster = await(stack.clusterStart);
      stack.submitter = new SparkSubmitter(settings, home);
      stack.measure("stack ready (s)", stack.secondsSinceStart());
      return stack;
    } catch (Exception | Error e) {
      stack.close();
      throw e;
    }
  }

  public ItSettings settings() {
    return settings;
  }

  public SparkStandaloneCluster cluster() {
    return cluster;
  }

  public HdfsCluster hdfs() {
    return hdfs;
  }

  public S3Server s3() {
    return s3;
  }

  public SparkSubmitter submitter() {
    return submitter;
  }

  public void measure(String key, String value) {
    measurements.put(key, value);
  }

  public String secondsSinceStart() {
    return String.format("%.1f", (System.nanoTime() - t0) / 1e9);
  }

  /**
   * Live children of the worker JVMs: the executors (and nothing else, a worker starts nothing
   * else).
   */
  public List<ProcessHandle> executors() {
    List<ProcessHandle> out = new ArrayList<>();
    for (long worker : cluster.workerPids()) {
      ProcessHandle.of(worker)
          .ifPresent(w -> w.children().filter(ProcessHandle::isAlive).forEach(out::add));
    }
    return out;
  }

  private interface Starter<T> {
    T start() throws Exception;
  }

  private <T> CompletableFuture<T> startAsync(String measurement, Starter<T> starter) {
    return CompletableFuture.supplyAsync(
        () -> {
          try {
            T started = starter.start();
            measure(measurement, secondsSinceStart());
            return started;
          } catch (Exception e) {
            throw new CompletionException(e);
          }
        },
        task -> {
          // one thread each: the common pool has a single thread on a 2-core machine
          Thread thread = new Thread(task, "it-start " + measurement);
          thread.setDaemon(true);
          thread.start();
        });
  }

  private static <T> T await(CompletableFuture<T> start) throws Exception {
    try {
      return start.get();
    } catch (ExecutionException e) {
      throw e.getCause() instanceof Exception cause ? cause : e;
    }
  }

  /**
   * Stops what started (a part still starting is waited for, so nothing it launches afterwards is
   * left behind) and saves the measurements.
   */
  @Override
  public void close() {
    List<AutoCloseable> closing = new ArrayList<>();
    for (CompletableFuture<? extends AutoCloseable> start :
        new ArrayList<>(java.util.Arrays.asList(clusterStart, hdfsStart, s3Start))) {
      if (start != null) {
        try {
          closing.add(start.join());
        } catch (RuntimeException alreadyReported) {
          // the start's exception went to the caller of start()
        }
      }
    }
    for (AutoCloseable c : closing) {
      try {
        c.close();
      } catch (Exception e) {
        System.err.println("[" + name + "] closing " + c + ": " + e);
      }
    }
    meter.close();
    measure("class wall time (s)", String.format("%.1f", meter.elapsedSeconds()));
    measure("peak RSS, test JVM + children (GB)", String.format("%.2f", meter.peakBytes() / 1e9));
    measure("peak process count", Long.toString(meter.peakProcesses()));
    StringBuilder report = new StringBuilder("[" + name + "] measurements\n");
    synchronized (measurements) {
      measurements.forEach(
          (k, v) -> report.append("  ").append(k).append(": ").append(v).append('\n'));
    }
    System.out.print(report);
    try {
      Files.createDirectories(settings.logDir());
      Files.writeString(settings.logDir().resolve(name + "-measurements.txt"), report);
    } catch (IOException e) {
      System.err.println("[" + name + "] could not save measurements: " + e);
    }
  }

  /** Every child (daemons, executors, drivers, s3proxy) is gone: for @AfterAll after close(). */
  public static List<String> leftoverProcesses() {
    return ProcessHandle.current()
        .descendants()
        .filter(ProcessHandle::isAlive)
        .map(p -> p.pid() + " " + p.info().commandLine().orElse("?"))
        .toList();
  }
}
