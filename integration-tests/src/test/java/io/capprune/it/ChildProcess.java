package io.capprune.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * A child process whose stdout and stderr go to one log file, and that is killed together with
 * everything it started (a Spark worker's executors) on {@link #close()} or, if the test JVM dies
 * first, from a shutdown hook. Orphaned JVMs would otherwise eat the machine's memory and ports for
 * the next test class.
 */
public final class ChildProcess implements AutoCloseable {

  private static final Set<ChildProcess> LIVE = ConcurrentHashMap.newKeySet();

  static {
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> List.copyOf(LIVE).forEach(ChildProcess::close), "it-child-process-reaper"));
  }

  private final String name;
  private final List<String> command;
  private final Path log;
  private final Process process;

  private ChildProcess(String name, List<String> command, Path log, Process process) {
    this.name = name;
    this.command = List.copyOf(command);
    this.log = log;
    this.process = process;
  }

  /** Starts {@code command} with {@code extraEnv} added to this JVM's environment. */
  public static ChildProcess start(
      String name, List<String> command, Map<String, String> extraEnv, Path workDir, Path log) {
    try {
      Files.createDirectories(log.getParent());
      Files.createDirectories(workDir);
      ProcessBuilder builder =
          new ProcessBuilder(command)
              .directory(workDir.toFile())
              .redirectErrorStream(true)
              .redirectOutput(log.toFile());
      builder.environment().putAll(extraEnv);
      ChildProcess child = new ChildProcess(name, command, log, builder.start());
      LIVE.add(child);
      return child;
    } catch (IOException e) {
      throw new UncheckedIOException(
          "could not start " + name + " (" + command.get(0) + "), log " + log, e);
    }
  }

  public String name() {
    return name;
  }

  public List<String> command() {
    return command;
  }

  public Path log() {
    return log;
  }

  public long pid() {
    return process.pid();
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /**
   * Waits for exit: the exit code, or {@code null} if the process still runs after {@code timeout}.
   */
  public Integer waitFor(Duration timeout) throws InterruptedException {
    return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS) ? process.exitValue() : null;
  }

  /** The log so far; for assertions and for failure messages. */
  public String output() {
    try {
      return Files.exists(log) ? Files.readString(log) : "";
    } catch (IOException e) {
      throw new UncheckedIOException("could not read log " + log, e);
    }
  }

  /** The last lines of the log, to put into a failure message. */
  public String tail(int lines) {
    List<String> all = output().lines().toList();
    return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
  }

  /**
   * SIGKILL to this process only, as a crash would: no shutdown hooks run, its children (if any)
   * are left to notice on their own. Waits until it is gone.
   */
  public void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(10, TimeUnit.SECONDS);
  }

  /**
   * SIGTERM first (a worker then stops its executors, a JVM flushes its log), SIGKILL after a grace
   * period; descendants are collected before the parent goes, since afterwards they are re-parented
   * and can no longer be found from here.
   */
  @Override
  public void close() {
    List<ProcessHandle> descendants = process.descendants().toList();
    process.destroy();
    descendants.forEach(ProcessHandle::destroy);
    try {
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
    for (ProcessHandle d : descendants) {
      if (d.isAlive()) {
        d.destroyForcibly();
      }
    }
    LIVE.remove(this);
  }

  @Override
  public String toString() {
    return name + " (pid " + process.pid() + ", log " + log + ")";
  }
}
