package io.capprune.spark.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The JVM's exit and a task inside libtorch: the shutdown hook's {@link WorkerRuntime#quiesce}
 * waits for the running task, refuses new ones, and gives up after its wait.
 */
class WorkerRuntimeShutdownTest {

  @Test
  void exitWaitsForTheRunningTaskAndRefusesNewOnes() throws Exception {
    WorkerRuntime runtime = WorkerRuntime.fresh();
    CountDownLatch release = new CountDownLatch(1);
    CompletableFuture<String> task = taskInside(runtime, release);
    CompletableFuture<Boolean> exit =
        CompletableFuture.supplyAsync(() -> runtime.quiesce(Duration.ofSeconds(30)));
    Thread.sleep(300);
    assertFalse(exit.isDone(), "the exit waits while the task is inside");

    IllegalStateException refused =
        assertThrows(IllegalStateException.class, () -> runtime.alone(() -> "next step"));
    assertTrue(refused.getMessage().contains("JVM is exiting"), refused.getMessage());

    release.countDown();
    assertEquals("step done", task.get(10, TimeUnit.SECONDS));
    assertTrue(exit.get(10, TimeUnit.SECONDS), "the exit goes on once the task has left");
  }

  @Test
  void exitGivesUpAfterItsWait() throws Exception {
    WorkerRuntime runtime = WorkerRuntime.fresh();
    CountDownLatch release = new CountDownLatch(1);
    CompletableFuture<String> task = taskInside(runtime, release);
    long t0 = System.nanoTime();
    assertFalse(runtime.quiesce(Duration.ofMillis(200)), "a task still inside");
    assertTrue(System.nanoTime() - t0 >= 150_000_000L, "it waited");
    release.countDown();
    task.get(10, TimeUnit.SECONDS);
  }

  @Test
  void tasksRunOneAtATimeBeforeTheExit() {
    WorkerRuntime runtime = WorkerRuntime.fresh();
    assertEquals(3, runtime.alone(() -> 1 + 2));
    assertTrue(runtime.quiesce(Duration.ofMillis(100)), "nothing running: the exit goes on");
  }

  /** A task that has entered the runtime's native section and stays there until release. */
  private static CompletableFuture<String> taskInside(WorkerRuntime runtime, CountDownLatch release)
      throws InterruptedException {
    CountDownLatch inside = new CountDownLatch(1);
    CompletableFuture<String> task =
        CompletableFuture.supplyAsync(
            () ->
                runtime.alone(
                    () -> {
                      inside.countDown();
                      await(release);
                      return "step done";
                    }));
    assertTrue(inside.await(10, TimeUnit.SECONDS));
    return task;
  }

  private static void await(CountDownLatch latch) {
    try {
      assertTrue(latch.await(30, TimeUnit.SECONDS));
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }
}
