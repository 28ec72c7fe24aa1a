package io.capprune.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The process fixture on its own: a plain unit test, no cluster (runs with mvn test). */
class ChildProcessTest {

  @TempDir Path dir;

  @Test
  void capturesOutputAndExitCodeWithEnvironment() throws Exception {
    try (ChildProcess p =
        ChildProcess.start(
            "echo",
            List.of("sh", "-c", "echo out-$IT_VAR; echo err >&2; exit 7"),
            Map.of("IT_VAR", "x1"),
            dir,
            dir.resolve("logs/echo.log"))) {
      assertEquals(7, p.waitFor(Duration.ofSeconds(20)));
      assertEquals("out-x1\nerr\n", p.output());
      assertEquals("err", p.tail(1));
    }
  }

  @Test
  void closeKillsTheProcessAndEverythingItStarted() throws Exception {
    ChildProcess p =
        ChildProcess.start(
            "sleepers",
            List.of("sh", "-c", "sleep 300 & sleep 300 & wait"),
            Map.of(),
            dir,
            dir.resolve("sleepers.log"));
    List<ProcessHandle> children = List.of();
    for (int i = 0; i < 100 && children.size() < 2; i++) {
      Thread.sleep(50);
      children = ProcessHandle.of(p.pid()).orElseThrow().descendants().toList();
    }
    assertEquals(2, children.size(), "sleep children of " + p);
    assertNull(p.waitFor(Duration.ofMillis(100)), "still running before close");

    p.close();

    assertFalse(p.isAlive());
    for (ProcessHandle child : children) {
      child.onExit().get(10, java.util.concurrent.TimeUnit.SECONDS);
      assertFalse(child.isAlive(), "child " + child.pid() + " survived close()");
    }
  }

  @Test
  void startFailureNamesTheCommandAndLog() {
    Path log = dir.resolve("missing.log");
    RuntimeException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            RuntimeException.class,
            () ->
                ChildProcess.start(
                    "ghost", List.of("/nonexistent/ghost-binary"), Map.of(), dir, log));
    assertTrue(
        e.getMessage().contains("ghost")
            && e.getMessage().contains("/nonexistent/ghost-binary")
            && e.getMessage().contains(log.toString()),
        e.getMessage());
  }
}
