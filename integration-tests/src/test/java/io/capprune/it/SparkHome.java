package io.capprune.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * A SPARK_HOME without a Spark download: {@code jars/} holds symlinks to the Spark and Hadoop client
 * jars Maven resolved (the classpath file written by dependency:build-classpath). Workers launch
 * executors with {@code SPARK_HOME/jars/*}; without it they die with "Cannot find any build directories".
 */
public record SparkHome(Path dir, List<Path> jars) {

    public static final String SCALA_VERSION = "2.13";

    public static SparkHome create(Path classpathFile, Path dir) {
        ItSettings.requireFile(classpathFile,
                "run mvn -pl integration-tests -am test-compile (dependency:build-classpath writes it)");
        try {
            List<Path> jars = new ArrayList<>();
            Arrays.stream(Files.readString(classpathFile).trim().split(java.io.File.pathSeparator))
                    .filter(s -> !s.isBlank())
                    .map(Path::of)
                    .forEach(jars::add);
            if (jars.stream().noneMatch(j -> j.getFileName().toString().startsWith("spark-core_"))) {
                throw new IllegalStateException(classpathFile + " lists no spark-core jar: " + jars.size() + " entries");
            }
            Path jarsDir = dir.resolve("jars");
            Files.createDirectories(jarsDir);
            try (var old = Files.list(jarsDir)) {
                for (Path p : old.toList()) {
                    Files.delete(p);
                }
            }
            for (Path jar : jars) {
                Files.createSymbolicLink(jarsDir.resolve(jar.getFileName()), jar);
            }
            return new SparkHome(dir, List.copyOf(jars));
        } catch (IOException e) {
            throw new UncheckedIOException("could not build SPARK_HOME in " + dir + " from " + classpathFile, e);
        }
    }

    /** The classpath every Spark JVM we start ourselves runs on (master, workers, spark-submit). */
    public String classpath() {
        return dir.resolve("jars").toString() + "/*";
    }

    /** The environment every Spark process needs here: loopback only, Scala 2.13, DJL offline. */
    public Map<String, String> environment() {
        return Map.of(
                "SPARK_HOME", dir.toString(),
                "SPARK_SCALA_VERSION", SCALA_VERSION,
                "SPARK_LOCAL_IP", "127.0.0.1",
                "DJL_OFFLINE", "true");
    }
}
