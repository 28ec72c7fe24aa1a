package io.capprune.spark.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class ConfigReferenceTest {
  private static final Path PAGE =
      Path.of(System.getProperty("user.dir")).getParent().resolve("docs/configuration.md");

  @Test
  void everyKeyIsDocumentedWithAComment() {
    Config ref =
        ConfigFactory.parseResources(getClass().getClassLoader(), "capprune/reference.conf");
    ref.entrySet()
        .forEach(
            e ->
                assertTrue(
                    !e.getValue().origin().comments().isEmpty(),
                    "reference.conf key " + e.getKey() + " has no comment"));
  }

  @Test
  void thePageIsTheGeneratedReference() throws Exception {
    String page = Files.readString(PAGE);
    assertEquals(
        ConfigReference.markdown(),
        page,
        "docs/configuration.md differs from conf/reference.conf: regenerate it with "
            + "bin/cap-prune config-reference > docs/configuration.md");
  }
}
