package io.capprune.it;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.stream.Stream;

/**
 * Jars one package of the compiled test classes, so a test-only Spark application can be submitted
 * like any other: built here rather than by a Maven test-jar so an IDE run needs no packaging step.
 */
public final class TestJar {

  private TestJar() {}

  /** Writes {@code jar} with every class under {@code classesDir/<package path>} and returns it. */
  public static Path build(Path classesDir, String packageName, Path jar) {
    Path packageDir = classesDir.resolve(packageName.replace('.', '/'));
    if (!Files.isDirectory(packageDir)) {
      throw new IllegalStateException(
          "no compiled classes for package " + packageName + " in " + packageDir);
    }
    Manifest manifest = new Manifest();
    manifest.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
    try {
      Files.createDirectories(jar.getParent());
      List<Path> files;
      try (Stream<Path> walk = Files.walk(packageDir)) {
        files = walk.filter(Files::isRegularFile).sorted().toList();
      }
      try (OutputStream os = Files.newOutputStream(jar);
          JarOutputStream out = new JarOutputStream(os, manifest)) {
        for (Path file : files) {
          out.putNextEntry(new JarEntry(classesDir.relativize(file).toString().replace('\\', '/')));
          Files.copy(file, out);
          out.closeEntry();
        }
      }
      return jar;
    } catch (IOException e) {
      throw new UncheckedIOException("could not write " + jar, e);
    }
  }
}
