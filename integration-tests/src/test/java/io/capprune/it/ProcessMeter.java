package io.capprune.it;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * Peak resident memory of this JVM plus every process it started (Spark daemons, executors,
 * drivers, s3proxy), sampled from /proc every {@code periodMillis}: the figure the docs quote for
 * the suite. Summing RSS counts shared pages (the JDK's class data) once per JVM, so it slightly
 * overstates.
 */
public final class ProcessMeter implements AutoCloseable {

  private final long startNanos = System.nanoTime();
  private final AtomicLong peakBytes = new AtomicLong();
  private final AtomicLong peakProcesses = new AtomicLong();
  private final Thread sampler;
  private volatile boolean running = true;

  public ProcessMeter(long periodMillis) {
    sampler =
        new Thread(
            () -> {
              while (running) {
                sample();
                try {
                  Thread.sleep(periodMillis);
                } catch (InterruptedException e) {
                  return;
                }
              }
            },
            "it-process-meter");
    sampler.setDaemon(true);
    sampler.start();
  }

  /**
   * Sum of VmRSS over this JVM and its descendants right now, in bytes (0 where /proc is missing).
   */
  public static long currentRssBytes() {
    try (Stream<ProcessHandle> all =
        Stream.concat(Stream.of(ProcessHandle.current()), ProcessHandle.current().descendants())) {
      return all.mapToLong(p -> rssBytes(p.pid())).sum();
    }
  }

  static long rssBytes(long pid) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
        if (line.startsWith("VmRSS:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException | NumberFormatException e) {
      // the process ended between listing and reading: it uses nothing any more
    }
    return 0;
  }

  private void sample() {
    peakBytes.accumulateAndGet(currentRssBytes(), Math::max);
    peakProcesses.accumulateAndGet(1 + ProcessHandle.current().descendants().count(), Math::max);
  }

  public long peakBytes() {
    return peakBytes.get();
  }

  public long peakProcesses() {
    return peakProcesses.get();
  }

  public double elapsedSeconds() {
    return (System.nanoTime() - startNanos) / 1e9;
  }

  public String summary() {
    return String.format(
        "wall %.1f s, peak RSS %.2f GB over at most %d processes (this JVM + children)",
        elapsedSeconds(), peakBytes() / 1e9, peakProcesses());
  }

  @Override
  public void close() {
    running = false;
    sampler.interrupt();
    sample();
  }
}
