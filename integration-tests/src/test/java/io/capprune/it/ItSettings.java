package io.capprune.it;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Where the build put what the fixtures need. Failsafe passes these as system properties (see
 * integration-tests/pom.xml); the fallbacks let an IDE run the ITs from the module directory after
 * {@code mvn -pl integration-tests -am test-compile}.
 */
public record ItSettings(
    Path buildDir,
    Path sparkClasspathFile,
    Path s3proxyJar,
    Path appJar,
    List<String> sparkJvmArgs,
    List<String> djlJvmArgs) {

  public static ItSettings fromSystemProperties() {
    Path buildDir = path("capprune.it.buildDir", "target");
    return new ItSettings(
        buildDir,
        path("capprune.it.sparkClasspathFile", buildDir.resolve("spark-classpath.txt").toString()),
        path("capprune.it.s3proxyJar", buildDir.resolve("s3proxy/s3proxy.jar").toString()),
        path("capprune.it.appJar", "../spark-job/target/cap-prune.jar"),
        words(System.getProperty("capprune.it.sparkJvmArgs", "")),
        words(
            System.getProperty(
                "capprune.it.djlJvmArgs",
                "-Dai.djl.offline=true -Dai.djl.default_engine=PyTorch")));
  }

  /** The repository's root: deploy/ and conf/ are there. */
  public static Path repoDir() {
    return path("capprune.it.repoDir", "..");
  }

  /** Directory for every child process's log, kept after the run for post-mortems. */
  public Path logDir() {
    return buildDir.resolve("it-logs");
  }

  /** Fails with the file and how to produce it, instead of a child JVM dying on a missing jar. */
  public static Path requireFile(Path file, String whatBuildsIt) {
    if (!Files.isRegularFile(file)) {
      throw new IllegalStateException(
          "missing " + file.toAbsolutePath().normalize() + ": " + whatBuildsIt);
    }
    return file;
  }

  private static Path path(String property, String fallback) {
    return Path.of(System.getProperty(property, fallback)).toAbsolutePath().normalize();
  }

  private static List<String> words(String value) {
    List<String> out = new ArrayList<>();
    Arrays.stream(value.trim().split("\\s+")).filter(w -> !w.isEmpty()).forEach(out::add);
    return List.copyOf(out);
  }
}
