package io.capprune.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A real Spark standalone cluster on this machine: one Master and {@code workers} Worker JVMs, each
 * a separate child process on 127.0.0.1 with kernel-chosen ports. {@link #start} returns once the
 * master's JSON lists every worker ALIVE, so a submission right after gets all of them.
 */
public final class SparkStandaloneCluster implements AutoCloseable {

  /** Heap of the master and worker daemons; executors get their own from spark.executor.memory. */
  private static final String DAEMON_HEAP = "-Xmx384m";

  private final SparkHome sparkHome;
  private final int masterPort;
  private final int masterWebUiPort;
  private final List<ChildProcess> processes = new ArrayList<>();
  private final List<ChildProcess> workers = new ArrayList<>();

  private SparkStandaloneCluster(SparkHome sparkHome, int masterPort, int masterWebUiPort) {
    this.sparkHome = sparkHome;
    this.masterPort = masterPort;
    this.masterWebUiPort = masterWebUiPort;
  }

  /**
   * Starts the master, then the workers (a worker that finds no master backs off for 5-15 s, so
   * they start only once the master listens), and waits until all are registered.
   */
  public static SparkStandaloneCluster start(
      ItSettings settings,
      SparkHome sparkHome,
      int workers,
      int coresPerWorker,
      String memoryPerWorker,
      Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    SparkStandaloneCluster cluster =
        new SparkStandaloneCluster(sparkHome, Ports.free(), Ports.free());
    try {
      Path logs = settings.logDir();
      ChildProcess master =
          cluster.launch(
              settings,
              "spark-master",
              logs,
              List.of(
                  "org.apache.spark.deploy.master.Master",
                  "--host",
                  "127.0.0.1",
                  "--port",
                  Integer.toString(cluster.masterPort),
                  "--webui-port",
                  Integer.toString(cluster.masterWebUiPort)));
      Ports.awaitListening(cluster.masterPort, master, remaining(deadline));
      for (int i = 1; i <= workers; i++) {
        Path workDir = logs.resolve("spark-worker-" + i + "-work");
        ChildProcess worker =
            cluster.launch(
                settings,
                "spark-worker-" + i,
                logs,
                List.of(
                    "org.apache.spark.deploy.worker.Worker",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    Integer.toString(Ports.free()),
                    "--webui-port",
                    Integer.toString(Ports.free()),
                    "--cores",
                    Integer.toString(coresPerWorker),
                    "--memory",
                    memoryPerWorker,
                    "--work-dir",
                    workDir.toString(),
                    cluster.masterUrl()));
        cluster.workers.add(worker);
      }
      cluster.awaitAliveWorkers(workers, deadline);
      return cluster;
    } catch (RuntimeException | InterruptedException | Error e) {
      cluster.close();
      throw e;
    }
  }

  public String masterUrl() {
    return "spark://127.0.0.1:" + masterPort;
  }

  public URI masterJsonUri() {
    return URI.create("http://127.0.0.1:" + masterWebUiPort + "/json/");
  }

  public SparkHome sparkHome() {
    return sparkHome;
  }

  /** Worker JVM pids: executors are their child processes. */
  public List<Long> workerPids() {
    return workers.stream().map(ChildProcess::pid).toList();
  }

  /** Every process this cluster started, for the memory meter and for clean-up checks. */
  public List<ChildProcess> processes() {
    return List.copyOf(processes);
  }

  /** The master's view: its /json document (workers, their state, cores, memory, applications). */
  public JsonNode masterState() throws IOException, InterruptedException {
    HttpResponse<String> response =
        HttpClient.newBuilder()
            .followRedirects(HttpClient.Redirect.NORMAL)
            .build()
            .send(
                HttpRequest.newBuilder(masterJsonUri())
                    .timeout(Duration.ofSeconds(5))
                    .GET()
                    .build(),
                HttpResponse.BodyHandlers.ofString());
    if (response.statusCode() != 200) {
      throw new IOException(masterJsonUri() + " answered HTTP " + response.statusCode());
    }
    return new ObjectMapper().readTree(response.body());
  }

  private ChildProcess launch(
      ItSettings settings, String name, Path logs, List<String> mainAndArgs) {
    List<String> command = new ArrayList<>();
    command.add(javaExecutable());
    command.add(DAEMON_HEAP);
    command.addAll(settings.sparkJvmArgs());
    command.add("-cp");
    command.add(sparkHome.classpath());
    command.addAll(mainAndArgs);
    ChildProcess process =
        ChildProcess.start(
            name, command, sparkHome.environment(), logs, logs.resolve(name + ".log"));
    processes.add(process);
    return process;
  }

  private void awaitAliveWorkers(int expected, long deadline) throws InterruptedException {
    String last = "no answer yet";
    while (System.nanoTime() < deadline) {
      for (ChildProcess p : processes) {
        if (!p.isAlive()) {
          throw new IllegalStateException(
              p + " exited during cluster start; log tail:\n" + p.tail(30));
        }
      }
      try {
        JsonNode state = masterState();
        int alive = 0;
        for (JsonNode worker : state.path("workers")) {
          if ("ALIVE".equals(worker.path("state").asText())) {
            alive++;
          }
        }
        last = alive + " of " + expected + " workers ALIVE";
        if (alive == expected) {
          return;
        }
      } catch (IOException e) {
        last = e.toString();
      }
      Thread.sleep(250);
    }
    throw new IllegalStateException(
        "Spark master "
            + masterJsonUri()
            + ": "
            + last
            + " before the deadline; logs in "
            + processes.get(0).log().getParent());
  }

  static String javaExecutable() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  private static Duration remaining(long deadline) {
    return Duration.ofNanos(Math.max(0, deadline - System.nanoTime()));
  }

  /** Workers first (each stops its executors on SIGTERM), then the master. */
  @Override
  public void close() {
    for (int i = processes.size() - 1; i >= 0; i--) {
      processes.get(i).close();
    }
  }
}
