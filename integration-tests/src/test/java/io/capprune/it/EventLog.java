package io.capprune.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * An application's Spark event log (spark.eventLog.enabled, uncompressed JSON lines): which
 * executor ran which task of which job. Jobs are known by the description the job sets ({@code
 * sc.setJobDescription("prune step 3/32 (epoch 1)")}).
 */
public final class EventLog {

  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path file;
  private final String appId;
  private final Map<Integer, String> jobOfStage = new HashMap<>();

  /** successful tasks per job description prefix source: stage -> executor ids */
  private final List<String[]> tasks = new ArrayList<>();

  private final Set<String> executorsAdded = new TreeSet<>();
  private final Set<String> executorsRemoved = new TreeSet<>();

  private EventLog(Path file) throws IOException {
    this.file = file;
    this.appId =
        file.getFileName().toString().replace(".inprogress", "").replaceFirst("^events_\\d+_", "");
    try (Stream<String> lines = Files.lines(file)) {
      lines.forEach(this::event);
    }
  }

  /**
   * The log of the application named {@code appName} (the newest if several), from its first event.
   */
  public static EventLog of(Path dir, String appName) {
    // a single file per application (rolling off), or Spark 4's default
    // eventlog_v2_<app>/events_<n>_<app>
    try (Stream<Path> files = Files.walk(dir, 2)) {
      List<Path> candidates =
          files
              .filter(Files::isRegularFile)
              .filter(
                  f ->
                      f.getFileName().toString().startsWith("app-")
                          || f.getFileName().toString().startsWith("events_"))
              .sorted()
              .toList();
      EventLog found = null;
      for (Path f : candidates) {
        String first;
        try (Stream<String> lines = Files.lines(f)) {
          first =
              lines
                  .filter(l -> l.contains("\"SparkListenerApplicationStart\""))
                  .findFirst()
                  .orElse("");
        }
        if (!first.isEmpty() && appName.equals(JSON.readTree(first).path("App Name").asText())) {
          found = new EventLog(f);
        }
      }
      if (found == null) {
        throw new AssertionError(
            "no event log of application '" + appName + "' in " + dir + ": " + candidates);
      }
      return found;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read event logs in " + dir, e);
    }
  }

  private void event(String line) {
    JsonNode e;
    try {
      e = JSON.readTree(line);
    } catch (IOException ex) {
      return; // the last line of a log whose driver was killed may be cut off
    }
    switch (e.path("Event").asText()) {
      case "SparkListenerJobStart" -> {
        String description = e.path("Properties").path("spark.job.description").asText("");
        e.path("Stage IDs").forEach(s -> jobOfStage.put(s.asInt(), description));
      }
      case "SparkListenerTaskEnd" -> {
        JsonNode info = e.path("Task Info");
        String reason = e.path("Task End Reason").path("Reason").asText();
        tasks.add(
            new String[] {
              Integer.toString(e.path("Stage ID").asInt()),
              info.path("Executor ID").asText(),
              reason
            });
      }
      case "SparkListenerExecutorAdded" -> executorsAdded.add(e.path("Executor ID").asText());
      case "SparkListenerExecutorRemoved" -> executorsRemoved.add(e.path("Executor ID").asText());
      default -> {}
    }
  }

  public String appId() {
    return appId;
  }

  public Path file() {
    return file;
  }

  /**
   * Executor id -> number of successful tasks, over the jobs whose description starts with {@code
   * prefix}.
   */
  public Map<String, Integer> successfulTasksByExecutor(String jobDescriptionPrefix) {
    Map<String, Integer> out = new TreeMap<>();
    for (String[] t : tasks) {
      String job = jobOfStage.getOrDefault(Integer.parseInt(t[0]), "");
      if (job.startsWith(jobDescriptionPrefix) && t[2].equals("Success")) {
        out.merge(t[1], 1, Integer::sum);
      }
    }
    return out;
  }

  /** End reasons of tasks that did not succeed (e.g. ExecutorLostFailure). */
  public List<String> failedTaskReasons() {
    return tasks.stream()
        .filter(t -> !t[2].equals("Success"))
        .map(t -> t[2] + " on executor " + t[1])
        .toList();
  }

  public Set<String> executorsAdded() {
    return executorsAdded;
  }

  public Set<String> executorsRemoved() {
    return executorsRemoved;
  }

  @Override
  public String toString() {
    return file.toString();
  }
}
