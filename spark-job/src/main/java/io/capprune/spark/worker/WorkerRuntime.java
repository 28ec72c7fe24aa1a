package io.capprune.spark.worker;

import ai.djl.Device;
import ai.djl.engine.Engine;
import io.capprune.core.bert.DjlRuntime;
import java.net.InetAddress;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one DJL worker of an executor JVM, kept across steps.
 *
 * <p>DJL allows one GradientCollector per JVM (a static flag in the PyTorch engine), so two tasks
 * of the same executor must never run a backward pass at once. The deployment runs one task per
 * executor ({@code spark.task.cpus} = executor cores); this lock enforces it anyway, so that local
 * mode with several task slots, or a mis-sized cluster, serialises instead of failing. The same
 * lock lets the JVM's exit wait for a task inside libtorch ({@link #quiesce}, at most {@link
 * #SHUTDOWN_WAIT}), so that a stopped run exits with its signal's status, not a crash report.
 *
 * <p>The device: the GPU Spark assigned to the task (mapped through {@code CUDA_VISIBLE_DEVICES},
 * see {@link GpuAddresses}) when GPUs are used, else the CPU. When Spark schedules GPUs ({@code
 * spark.task.resource.gpu.amount} > 0) and {@code cap.worker.use-gpu} is not false, a task without
 * a GPU, or a GPU the PyTorch engine cannot see (a CPU libtorch), fails the task at once with a
 * message; it never falls back to the CPU. The first task of each JVM logs what it sees ({@link
 * ExecutorDevice#describe}).
 */
public final class WorkerRuntime {
  private static final Logger LOG = LoggerFactory.getLogger(WorkerRuntime.class);
  private static volatile WorkerRuntime instance;

  /**
   * How long the JVM's exit waits for a task's native section (a forward/backward pass) to end.
   * Kubernetes kills a pod 30 s after its SIGTERM by default; past that, waiting gains nothing.
   */
  static final Duration SHUTDOWN_WAIT = Duration.ofSeconds(30);

  private final ReentrantLock lock = new ReentrantLock(true);
  private final Set<String> logged = new HashSet<>();

  /** Set by the shutdown hook: no native section starts after it. */
  private volatile boolean closing;

  private WorkerRuntime() {}

  public static WorkerRuntime get() {
    WorkerRuntime w = instance;
    if (w == null) {
      synchronized (WorkerRuntime.class) {
        w = instance;
        if (w == null) {
          System.setProperty("ai.djl.offline", "true");
          w = new WorkerRuntime();
          WorkerRuntime runtime = w;
          // a SIGTERM (Ctrl-C, an Airflow timeout, a pod stopped) runs the JVM's exit while a task
          // may be inside libtorch; exit() then destroys libtorch's static objects under it and
          // the JVM dies with a crash report instead of exit status 143. Wait for it to leave.
          Runtime.getRuntime()
              .addShutdownHook(
                  new Thread(
                      () -> {
                        if (!runtime.quiesce(SHUTDOWN_WAIT)) {
                          System.err.println(
                              "cap-prune: a worker task was still inside libtorch after "
                                  + SHUTDOWN_WAIT.toSeconds()
                                  + " s of the JVM's exit; exiting anyway");
                        }
                      },
                      "cap-prune-worker-shutdown"));
          instance = w;
        }
      }
    }
    return w;
  }

  /** Runs {@code work} alone in this JVM, on the device Spark assigned to the current task. */
  public <T> T exclusive(boolean useGpu, Function<Device, T> work) {
    return alone(() -> work.apply(deviceForTask(useGpu)));
  }

  /**
   * Runs {@code work} under this JVM's lock, unless the JVM is exiting: for work in libtorch that
   * is not a task's, as the driver's own device update, so that the JVM's exit waits for it too.
   *
   * @throws IllegalStateException once {@link #quiesce} has begun
   */
  public <T> T alone(Supplier<T> work) {
    refuseWhenClosing();
    lock.lock();
    try {
      refuseWhenClosing();
      return work.get();
    } finally {
      lock.unlock();
    }
  }

  private void refuseWhenClosing() {
    if (closing) {
      throw new IllegalStateException(
          "cap-prune worker: the JVM is exiting, no new work starts on the device");
    }
  }

  /**
   * The shutdown hook's part: from now on no work starts, and the work running now may end; waits
   * up to {@code wait} for it and keeps the lock when it gets it (the JVM is about to exit).
   *
   * @return whether no work was running when it returned
   */
  boolean quiesce(Duration wait) {
    closing = true;
    try {
      return lock.tryLock(wait.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /** The device Spark assigned to the current task; see {@link #device}. */
  public static Device deviceForTask(boolean useGpu) {
    return get().device(useGpu);
  }

  /**
   * The device of the current task; logs what the executor sees the first time a device is chosen
   * in this JVM. Loads the PyTorch engine.
   *
   * @throws IllegalStateException when GPUs are scheduled but this task cannot use one
   */
  public Device device(boolean useGpu) {
    ExecutorDevice seen = inspect(useGpu);
    Device device =
        seen.device().equals("cpu()")
            ? Device.cpu()
            : Device.gpu(Integer.parseInt(seen.device().substring(4, seen.device().length() - 1)));
    logOnce(seen);
    return device;
  }

  /**
   * Logs what the executor sees the first time each device is chosen in this JVM; true if it did.
   */
  boolean logOnce(ExecutorDevice seen) {
    synchronized (logged) {
      if (!logged.add(seen.device())) {
        return false;
      }
    }
    LOG.info("cap-prune {}", seen.describe());
    return true;
  }

  /** A runtime of its own, for tests of what one JVM logs. */
  static WorkerRuntime fresh() {
    return new WorkerRuntime();
  }

  /** What does not change between the tasks of one JVM; computed once (host names can be slow). */
  private ExecutorDevice jvmView;

  private synchronized ExecutorDevice jvmView() {
    if (jvmView == null) {
      Engine engine = DjlRuntime.start(defaultThreads());
      String libtorch = libtorchPath();
      jvmView =
          new ExecutorDevice(
              host(),
              null,
              List.of(),
              System.getenv("CUDA_VISIBLE_DEVICES"),
              null,
              engine.getGpuCount(),
              System.getenv("PYTORCH_LIBRARY_PATH"),
              libtorch,
              flavour(libtorch),
              engine.getVersion());
    }
    return jvmView;
  }

  /**
   * What this executor sees for the current task, with the device chosen by {@link #chooseGpu}.
   *
   * @throws IllegalStateException when GPUs are scheduled but this task cannot use one; the message
   *     carries {@link ExecutorDevice#describe} of what was seen
   */
  ExecutorDevice inspect(boolean useGpu) {
    ExecutorDevice seen = observe();
    int ordinal;
    try {
      ordinal =
          chooseGpu(
              useGpu,
              taskGpus(),
              seen.gpuAddresses(),
              seen.cudaVisibleDevices(),
              seen.engineGpus(),
              seen.libtorch(),
              seen.flavour());
    } catch (IllegalStateException e) {
      throw new IllegalStateException(e.getMessage() + " [" + seen.describe() + "]", e);
    }
    return new ExecutorDevice(
        seen.host(),
        seen.executorId(),
        seen.gpuAddresses(),
        seen.cudaVisibleDevices(),
        ordinal < 0 ? "cpu()" : "gpu(" + ordinal + ")",
        seen.engineGpus(),
        seen.pytorchLibraryPath(),
        seen.libtorch(),
        seen.flavour(),
        seen.pytorchVersion());
  }

  /** What this executor sees for the current task, before a device is chosen (device null). */
  ExecutorDevice observe() {
    TaskContext tc = TaskContext.get();
    List<String> addresses = List.of();
    if (tc != null) {
      Map<String, ResourceInformation> res = tc.resourcesJMap();
      ResourceInformation gpu = res.get("gpu");
      if (gpu != null) {
        addresses = List.of(gpu.addresses());
      }
    }
    ExecutorDevice jvm = jvmView();
    // The executor id from the current SparkEnv: a JVM may see several (local mode, tests).
    SparkEnv env = SparkEnv.get();
    return new ExecutorDevice(
        jvm.host(),
        env == null ? "?" : env.executorId(),
        addresses,
        jvm.cudaVisibleDevices(),
        null,
        jvm.engineGpus(),
        jvm.pytorchLibraryPath(),
        jvm.libtorch(),
        jvm.flavour(),
        jvm.pytorchVersion());
  }

  /** spark.task.resource.gpu.amount of the application; 0 when GPUs are not scheduled. */
  private static double taskGpus() {
    SparkEnv env = SparkEnv.get();
    if (env == null) {
      return 0;
    }
    try {
      return Double.parseDouble(env.conf().get("spark.task.resource.gpu.amount", "0"));
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  /**
   * The CUDA ordinal the task must use, or -1 for the CPU.
   *
   * @param useGpu {@code cap.worker.use-gpu} is not false
   * @param taskGpus {@code spark.task.resource.gpu.amount} of the application (0: GPUs not
   *     scheduled)
   * @param addresses the GPU addresses Spark assigned to the task
   * @param cudaVisibleDevices the process's CUDA_VISIBLE_DEVICES, null when unset
   * @param engineGpus GPUs the PyTorch engine sees
   * @throws IllegalStateException when GPUs are scheduled and the task cannot use the one it was
   *     given (or was given none): never a silent fall-back to the CPU
   */
  static int chooseGpu(
      boolean useGpu,
      double taskGpus,
      List<String> addresses,
      String cudaVisibleDevices,
      int engineGpus,
      String libtorch,
      String flavour) {
    if (!useGpu) {
      return -1;
    }
    if (addresses.isEmpty()) {
      if (taskGpus > 0) {
        throw new IllegalStateException(
            "cap.worker.use-gpu: Spark schedules GPUs (spark.task.resource.gpu.amount="
                + taskGpus
                + ") but assigned none to this task; refusing to train on the CPU");
      }
      return -1;
    }
    int ordinal;
    try {
      ordinal = GpuAddresses.cudaOrdinal(addresses.get(0), cudaVisibleDevices);
    } catch (IllegalArgumentException e) {
      throw new IllegalStateException("cap.worker.use-gpu: " + e.getMessage(), e);
    }
    if (ordinal >= engineGpus) {
      throw new IllegalStateException(
          "cap.worker.use-gpu: Spark assigned GPU "
              + addresses.get(0)
              + " (CUDA ordinal "
              + ordinal
              + ") but the PyTorch engine sees "
              + engineGpus
              + " GPU(s) with libtorch "
              + libtorch
              + " (flavour "
              + flavour
              + "); GPU executors need a CUDA libtorch: deploy/ wrappers' "
              + "--libtorch DIR with libtorch 2.7.1+cu128 on the nodes (PYTORCH_LIBRARY_PATH, PYTORCH_FLAVOR=cu128), "
              + "or set cap.worker.use-gpu = false to train on the CPU");
    }
    return ordinal;
  }

  /**
   * PyTorch intra-op threads for loading the engine before the first task's own settings apply: the
   * executor's cores (cap.worker.threads, when set, is applied by the task right after).
   */
  private static int defaultThreads() {
    SparkEnv env = SparkEnv.get();
    if (env != null
        && env.conf().contains("spark.executor.cores")
        && !env.conf().get("spark.master", "").startsWith("local")) {
      return Math.max(1, env.conf().getInt("spark.executor.cores", 1));
    }
    return Math.max(1, Runtime.getRuntime().availableProcessors());
  }

  private static String libtorchPath() {
    try {
      return ai.djl.pytorch.jni.LibUtils.getLibtorchPath();
    } catch (RuntimeException | LinkageError e) {
      return "? (" + e.getMessage() + ")";
    }
  }

  private static final Pattern FLAVOUR_IN_PATH =
      Pattern.compile("(?:^|[-/])(cpu|cu[0-9]+)(?:[-/]|$)");

  /**
   * libtorch's flavour: PYTORCH_FLAVOR when set (the deploy/ wrappers set it with --libtorch), else
   * the flavour in the directory DJL unpacked the natives into (…/pytorch/2.7.1-cpu-linux-x86_64).
   */
  static String flavour(String libtorch) {
    String env = System.getenv("PYTORCH_FLAVOR");
    if (env != null && !env.isBlank()) {
      return env.trim();
    }
    if (libtorch != null) {
      Matcher m = FLAVOUR_IN_PATH.matcher(libtorch.toLowerCase(Locale.ROOT));
      if (m.find()) {
        return m.group(1);
      }
    }
    return "unknown";
  }

  private static String host() {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (java.io.IOException e) {
      return "?";
    }
  }
}
