package io.capprune.core.optim;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * Runs the driver's array loops on a small dedicated pool, one thread per core. A dedicated pool
 * because the common pool has cores-1 threads and is shared with whatever else runs in the driver
 * (Spark's own scheduling threads use it too).
 */
public final class ParallelLoops {

  private static final ForkJoinPool POOL =
      new ForkJoinPool(
          Math.max(1, Runtime.getRuntime().availableProcessors()),
          pool -> {
            ForkJoinWorkerThread t =
                ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(pool);
            t.setName("capprune-driver-math-" + t.getPoolIndex());
            t.setDaemon(true);
            return t;
          },
          null,
          false);

  /** Elements per work item when a loop runs over chunks of large tensors. */
  public static final int CHUNK = 1 << 18;

  private ParallelLoops() {}

  /**
   * Calls {@code body} for 0..n-1 in parallel and returns when all calls returned. The first
   * failure is rethrown as it was thrown (ForkJoinTask.join would re-create it with a different
   * message), and the remaining indices are skipped.
   */
  public static void forEach(int n, IntConsumer body) {
    if (n == 0) {
      return;
    }
    if (n == 1 || POOL.getParallelism() == 1) {
      for (int i = 0; i < n; i++) {
        body.accept(i);
      }
      return;
    }
    AtomicReference<Throwable> failure = new AtomicReference<>();
    POOL.submit(
            () ->
                IntStream.range(0, n)
                    .parallel()
                    .forEach(
                        i -> {
                          if (failure.get() != null) {
                            return;
                          }
                          try {
                            body.accept(i);
                          } catch (RuntimeException | Error e) {
                            failure.compareAndSet(null, e);
                          }
                        }))
        .join();
    Throwable t = failure.get();
    if (t instanceof RuntimeException r) {
      throw r;
    }
    if (t instanceof Error e) {
      throw e;
    }
  }
}
