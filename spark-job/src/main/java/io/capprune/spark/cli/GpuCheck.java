package io.capprune.spark.cli;

import io.capprune.spark.config.JobConfig;
import io.capprune.spark.pipeline.GpuPlan;
import io.capprune.spark.pipeline.SparkContexts;
import io.capprune.spark.worker.GpuCheckTask;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * {@code cap-prune gpu-check}: for operators, before a long job. Starts the application as the job
 * would (same Spark settings, same GPU plan and registration wait), runs one task per executor, and
 * on each creates a tensor on the device a training task would use (the GPU Spark assigned, mapped
 * through CUDA_VISIBLE_DEVICES, or the CPU) and prints what each executor sees: host, executor id,
 * assigned GPU addresses, CUDA_VISIBLE_DEVICES, the device, the engine's GPU count, libtorch's path
 * and flavour. Exit status 0 when every executor passed, 1 otherwise.
 */
final class GpuCheck {
  private GpuCheck() {}

  static int run(JobConfig config, PrintStream out, PrintStream err) {
    GpuPlan plan = SparkContexts.plan(config);
    try (JavaSparkContext sc = SparkContexts.create(config, "cap-prune gpu-check")) {
      int registered = SparkContexts.registeredExecutors(sc);
      int tasks = sc.isLocal() ? 1 : Math.max(1, Math.max(registered, plan.executors()));
      boolean useGpu = config.worker().useGpu();
      List<Integer> ids = new ArrayList<>();
      for (int i = 0; i < tasks; i++) {
        ids.add(i);
      }
      sc.setJobDescription("gpu-check: one task per executor");
      List<GpuCheckTask.Result> results =
          sc.parallelize(ids, tasks).map(i -> GpuCheckTask.probe(i, useGpu)).collect();
      out.println(
          "cap-prune gpu-check: master "
              + sc.master()
              + ", cap.worker.use-gpu = "
              + config.worker().useGpuMode()
              + ", GPUs "
              + (plan.gpus() ? "scheduled (one per executor and task)" : "not used")
              + ", "
              + registered
              + " executor(s) registered"
              + (plan.executors() > 0 ? " of " + plan.executors() + " requested" : "")
              + ", "
              + tasks
              + " task(s)");
      out.print(GpuCheckTask.table(results));
      List<String> problems = new ArrayList<>();
      Set<String> executorsSeen = new TreeSet<>();
      java.util.Map<String, String> gpuOwner = new java.util.HashMap<>();
      for (GpuCheckTask.Result r : results) {
        if (!r.ok()) {
          problems.add(
              "task "
                  + r.partition()
                  + (r.seen() == null
                      ? ""
                      : " on executor " + r.seen().executorId() + " (" + r.seen().host() + ")")
                  + ": "
                  + r.error());
        }
        if (r.seen() != null && !r.seen().gpuAddresses().isEmpty()) {
          String gpu = r.seen().host() + " GPU " + String.join(",", r.seen().gpuAddresses());
          String other = gpuOwner.putIfAbsent(gpu, r.seen().executorId());
          if (other != null && !other.equals(r.seen().executorId())) {
            problems.add(
                "executors "
                    + other
                    + " and "
                    + r.seen().executorId()
                    + " were both given "
                    + gpu
                    + ": the discovery script offers the same GPU to two executors (a node without GPU isolation?)");
          }
        }
        if (r.seen() != null && !executorsSeen.add(r.seen().executorId())) {
          problems.add(
              "executor "
                  + r.seen().executorId()
                  + " ran two of the tasks: spark.task.cpus is not "
                  + "spark.executor.cores (one task per executor), or some executors did not register");
        }
      }
      if (plan.executors() > 0 && registered < plan.executors()) {
        problems.add(
            "only " + registered + " of " + plan.executors() + " requested executors registered");
      }
      if (problems.isEmpty()) {
        out.println(
            "gpu-check: OK, "
                + results.size()
                + " executor(s)"
                + (plan.gpus() ? ", each on its own GPU" : ", on the CPU"));
        return 0;
      }
      for (String p : problems) {
        err.println("gpu-check: FAILED " + p);
      }
      return 1;
    }
  }
}
