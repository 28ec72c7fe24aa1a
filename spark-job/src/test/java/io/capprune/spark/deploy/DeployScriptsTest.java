package io.capprune.spark.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.capprune.spark.cli.CapPruneMain;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarOutputStream;
import java.util.zip.ZipEntry;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The deploy/ scripts run for real through bash: the spark-submit wrappers with --dry-run (and once
 * with a stand-in spark-submit that records its arguments), the GPU discovery script with a fake
 * nvidia-smi, and the Airflow DAG's static check with python3.
 */
class DeployScriptsTest {
  private static final String MAIN = "io.capprune.spark.cli.CapPruneMain";
  private static final Path REPO = findRepo();

  @TempDir Path tmp;
  private Path appJar;
  private Path nativesJar;

  @BeforeEach
  void jars() throws IOException {
    appJar = Files.writeString(tmp.resolve("cap-prune.jar"), "stand-in");
    nativesJar =
        Files.writeString(tmp.resolve("pytorch-native-cpu-2.7.1-linux-x86_64.jar"), "stand-in");
  }

  // ------------------------------------------------------------------------------ wrappers

  @Test
  void localModeRunsOneTaskAtATimeOfflineWithTheNativesJar() throws Exception {
    Run r =
        wrapper(
            "spark-submit-local.sh",
            List.of("--executor-cores", "3", "--driver-memory", "6g"),
            List.of("run", "--conf", "task=sst2", "--output", "/tmp/out"));
    assertEquals(0, r.exit, r.stderr);
    Command c = new Command(r.lines());
    assertEquals("local[3]", c.option("--master"));
    assertEquals(MAIN, c.option("--class"));
    assertEquals("6g", c.option("--driver-memory"));
    assertTrue(c.confs().contains("spark.task.cpus=3"), c.toString());
    assertOffline(c);
    assertEquals(nativesJar.toString(), c.option("--jars"));
    assertEquals(List.of("run", "--conf", "task=sst2", "--output", "/tmp/out"), c.jobArgs(appJar));
    assertEquals(
        "DJL_OFFLINE=true",
        c.env().get(0),
        "the client-mode driver gets DJL_OFFLINE from the environment");
    assertTrue(
        c.driverJavaOptions()
            .contains("-Dlog4j2.configurationFile=" + REPO.resolve("conf/log4j2.properties")),
        "the job's log configuration keeps its INFO progress lines: " + c.driverJavaOptions());
  }

  @Test
  void standaloneAsksForExecutorsTimesCoresAndOneGpuPerExecutorAndTask() throws Exception {
    Run r =
        wrapper(
            "spark-submit-standalone.sh",
            List.of(
                "--master",
                "spark://m1:7077",
                "--executors",
                "3",
                "--executor-cores",
                "2",
                "--executor-memory",
                "12g",
                "--gpus",
                "--libtorch",
                "/opt/libtorch/lib"),
            List.of("prune", "--resume"));
    assertEquals(0, r.exit, r.stderr);
    Command c = new Command(r.lines());
    assertEquals("spark://m1:7077", c.option("--master"));
    assertEquals("client", c.option("--deploy-mode"));
    assertEquals("2", c.option("--executor-cores"));
    assertEquals("6", c.option("--total-executor-cores"), "3 executors x 2 cores");
    assertEquals("12g", c.option("--executor-memory"));
    assertTrue(c.confs().contains("spark.task.cpus=2"), c.toString());
    assertTrue(c.confs().contains("spark.executor.resource.gpu.amount=1"), c.toString());
    assertTrue(c.confs().contains("spark.task.resource.gpu.amount=1"), c.toString());
    assertTrue(
        c.confs()
            .contains(
                "spark.executor.resource.gpu.discoveryScript="
                    + REPO.resolve("deploy/gpu-discovery.sh")),
        c.toString());
    assertTrue(
        c.confs().contains("spark.dynamicAllocation.enabled=false"),
        "a fixed set of GPU executors: " + c);
    assertEquals(List.of("prune", "--resume"), c.jobArgs(appJar));
  }

  @Test
  void withoutGpusNoGpuIsRequested() throws Exception {
    Run r =
        wrapper(
            "spark-submit-standalone.sh", List.of("--master", "spark://m1:7077"), List.of("run"));
    assertEquals(0, r.exit, r.stderr);
    assertFalse(r.stdout.contains("resource.gpu"), r.stdout);
  }

  @Test
  void yarnClusterShipsTheJobConfAndSetsTheDriverEnvironmentThroughTheAppMaster() throws Exception {
    Path jobConf = Files.writeString(tmp.resolve("weekly.conf"), "cap.task = rte\n");
    Run r =
        wrapper(
            "spark-submit-yarn.sh",
            List.of(
                "--job-conf",
                jobConf.toString(),
                "--queue",
                "ml",
                "--executors",
                "4",
                "--gpus",
                "--libtorch",
                "/opt/libtorch/lib"),
            List.of("run", "--output", "hdfs:///runs/rte"));
    assertEquals(0, r.exit, r.stderr);
    Command c = new Command(r.lines());
    assertEquals("yarn", c.option("--master"));
    assertEquals("cluster", c.option("--deploy-mode"));
    assertEquals("ml", c.option("--queue"));
    assertEquals("4", c.option("--num-executors"));
    List<String> files = List.of(c.option("--files").split(","));
    assertTrue(files.contains(jobConf.toString()), files.toString());
    assertTrue(
        files.contains(REPO.resolve("deploy/gpu-discovery.sh").toString()), files.toString());
    assertTrue(
        c.confs().contains("spark.executor.resource.gpu.discoveryScript=./gpu-discovery.sh"),
        c.toString());
    assertTrue(c.confs().contains("spark.yarn.appMasterEnv.DJL_OFFLINE=true"), c.toString());
    assertTrue(
        c.driverJavaOptions().contains("-Dlog4j2.configurationFile=log4j2.properties"),
        "cluster mode: the shipped copy in the container directory: " + c.driverJavaOptions());
    assertEquals(
        List.of("run", "--config", "weekly.conf", "--output", "hdfs:///runs/rte"),
        c.jobArgs(appJar));
    assertOffline(c);
  }

  @Test
  void libtorchOnTheNodesReplacesTheNativesJar() throws Exception {
    Run r =
        wrapper(
            "spark-submit-yarn.sh",
            List.of("--libtorch", "/opt/libtorch/lib", "--gpus"),
            List.of("run"));
    assertEquals(0, r.exit, r.stderr);
    Command c = new Command(r.lines());
    assertEquals(null, c.option("--jars"), "no natives jar when libtorch is on the nodes");
    for (String side : List.of("spark.executorEnv.", "spark.yarn.appMasterEnv.")) {
      assertTrue(c.confs().contains(side + "PYTORCH_LIBRARY_PATH=/opt/libtorch/lib"), c.toString());
      assertTrue(c.confs().contains(side + "PYTORCH_VERSION=2.7.1"), c.toString());
      assertTrue(
          c.confs().contains(side + "PYTORCH_FLAVOR=cu128"),
          "GPU runs default to the CUDA 12.8 JNI");
    }
    Run cpu =
        wrapper(
            "spark-submit-local.sh", List.of("--libtorch", "/opt/libtorch/lib"), List.of("run"));
    assertEquals(0, cpu.exit, cpu.stderr);
    Command lc = new Command(cpu.lines());
    assertTrue(
        lc.env().contains("PYTORCH_LIBRARY_PATH=/opt/libtorch/lib"),
        "client mode: the driver's environment");
    assertTrue(lc.confs().contains("spark.executorEnv.PYTORCH_FLAVOR=cpu"), lc.toString());
  }

  @Test
  void kubernetesUsesTheImageThePodTemplateAndTheGpuVendor() throws Exception {
    Run r =
        wrapper(
            "spark-submit-k8s.sh",
            List.of(
                "--master",
                "k8s://https://api:6443",
                "--image",
                "registry/cap-prune:0.1.0",
                "--namespace",
                "ml",
                "--service-account",
                "cap",
                "--gpus",
                "--image-has-libtorch"),
            List.of("run", "--output", "s3a://bucket/runs/sst2"),
            false);
    assertEquals(0, r.exit, r.stderr);
    Command c = new Command(r.lines());
    assertEquals("k8s://https://api:6443", c.option("--master"));
    assertEquals("cluster", c.option("--deploy-mode"));
    List<String> confs = c.confs();
    assertTrue(
        confs.contains("spark.kubernetes.container.image=registry/cap-prune:0.1.0"), c.toString());
    assertTrue(confs.contains("spark.kubernetes.namespace=ml"), c.toString());
    assertTrue(
        confs.contains("spark.kubernetes.authenticate.driver.serviceAccountName=cap"),
        c.toString());
    assertTrue(
        confs.contains(
            "spark.kubernetes.executor.podTemplateFile="
                + REPO.resolve("deploy/k8s/executor-pod-template.yaml")),
        c.toString());
    assertTrue(confs.contains("spark.executor.resource.gpu.vendor=nvidia.com"), c.toString());
    assertTrue(confs.contains("spark.kubernetes.driverEnv.DJL_OFFLINE=true"), c.toString());
    assertEquals(null, c.option("--jars"), "the image holds the CUDA libtorch: no CPU natives jar");
    assertFalse(c.toString().contains("PYTORCH_LIBRARY_PATH"), "the image sets it: " + c);
    assertEquals(
        List.of("run", "--output", "s3a://bucket/runs/sst2"),
        c.jobArgsAfter("local:///opt/cap-prune/cap-prune.jar"),
        "the app jar inside the image");
    String template = Files.readString(REPO.resolve("deploy/k8s/executor-pod-template.yaml"));
    assertTrue(
        template.contains("nvidia.com/gpu: 1"), "the GPU template limits one GPU per executor pod");
    assertTrue(template.contains("name: DJL_OFFLINE"), template);

    Run cpu =
        wrapper(
            "spark-submit-k8s.sh",
            List.of("--master", "k8s://https://api:6443", "--image", "i:1"),
            List.of("run"),
            false);
    assertEquals(0, cpu.exit, cpu.stderr);
    assertTrue(
        cpu.stdout.contains(
            "podTemplateFile=" + REPO.resolve("deploy/k8s/executor-pod-template-cpu.yaml")),
        cpu.stdout);
    assertFalse(cpu.stdout.contains("resource.gpu"), cpu.stdout);
    assertEquals(
        "local:///opt/cap-prune/lib/pytorch-native-cpu-2.7.1-linux-x86_64.jar",
        new Command(cpu.lines()).option("--jars"),
        "CPU executors: the natives jar in the image");
  }

  @Test
  void gpusWithoutACudaLibtorchAreRefused() throws Exception {
    for (List<String> master :
        List.of(
            List.of("spark-submit-yarn.sh"),
            List.of("spark-submit-standalone.sh", "--master", "spark://m:7077"),
            List.of(
                "spark-submit-k8s.sh", "--master", "k8s://https://api:6443", "--image", "i:1"))) {
      List<String> options = new ArrayList<>(master.subList(1, master.size()));
      options.add("--gpus");
      Run r =
          wrapper(
              master.get(0), options, List.of("run"), master.get(0).contains("k8s") ? false : true);
      assertEquals(2, r.exit, master + ": " + r.stdout);
      assertTrue(
          r.stderr.contains("--gpus needs a CUDA libtorch: pass --libtorch DIR")
              && r.stderr.contains("--image-has-libtorch"),
          r.stderr);
      assertEquals("", r.stdout, "no command printed");
    }
    Run driver = wrapper("spark-submit-yarn.sh", List.of("--driver-gpu"), List.of("run"));
    assertEquals(2, driver.exit);
    assertTrue(driver.stderr.contains("--driver-gpu needs a CUDA libtorch"), driver.stderr);
    Run both =
        wrapper(
            "spark-submit-yarn.sh",
            List.of("--gpus", "--libtorch", "/opt/lt", "--image-has-libtorch"),
            List.of("run"));
    assertEquals(2, both.exit);
    assertTrue(both.stderr.contains("--libtorch and --image-has-libtorch: give one"), both.stderr);
  }

  @Test
  void anImageWithLibtorchShipsNoNativesJarAndSetsNoPytorchVariables() throws Exception {
    Run r =
        wrapper("spark-submit-yarn.sh", List.of("--gpus", "--image-has-libtorch"), List.of("run"));
    assertEquals(0, r.exit, r.stderr);
    Command c = new Command(r.lines());
    assertEquals(null, c.option("--jars"));
    assertFalse(c.toString().contains("PYTORCH_"), c.toString());
    assertTrue(c.confs().contains("spark.task.resource.gpu.amount=1"), c.toString());
  }

  @Test
  void theDriverCanHaveAGpuAndCores() throws Exception {
    Run cluster =
        wrapper(
            "spark-submit-yarn.sh",
            List.of(
                "--gpus", "--driver-gpu", "--driver-cores", "6", "--libtorch", "/opt/libtorch/lib"),
            List.of("run"));
    assertEquals(0, cluster.exit, cluster.stderr);
    Command c = new Command(cluster.lines());
    assertEquals("6", c.option("--driver-cores"));
    assertTrue(c.confs().contains("spark.driver.resource.gpu.amount=1"), c.toString());
    assertTrue(
        c.confs().contains("spark.driver.resource.gpu.discoveryScript=./gpu-discovery.sh"),
        "cluster mode: the driver runs in the application master's container, with the shipped copy: "
            + c);
    assertTrue(c.confs().contains("spark.yarn.appMasterEnv.PYTORCH_FLAVOR=cu128"), c.toString());
    List<String> files = List.of(c.option("--files").split(","));
    assertEquals(
        1,
        files.stream().filter(f -> f.endsWith("gpu-discovery.sh")).count(),
        "shipped once: " + files);

    Run client =
        wrapper(
            "spark-submit-yarn.sh",
            List.of("--deploy-mode", "client", "--driver-gpu", "--libtorch", "/opt/libtorch/lib"),
            List.of("run"));
    assertEquals(0, client.exit, client.stderr);
    Command cc = new Command(client.lines());
    assertTrue(
        cc.confs()
            .contains(
                "spark.driver.resource.gpu.discoveryScript="
                    + REPO.resolve("deploy/gpu-discovery.sh")),
        "client mode: the driver runs here: " + cc);
    assertTrue(
        cc.env().contains("PYTORCH_FLAVOR=cu128"),
        "a GPU driver defaults to the CUDA flavour: " + cc.env());
    assertFalse(
        cc.confs().contains("spark.task.resource.gpu.amount=1"),
        "executors stay on the CPU: " + cc);

    Run k8s =
        wrapper(
            "spark-submit-k8s.sh",
            List.of(
                "--master",
                "k8s://https://api:6443",
                "--image",
                "i:1",
                "--gpus",
                "--driver-gpu",
                "--image-has-libtorch"),
            List.of("run"),
            false);
    assertEquals(0, k8s.exit, k8s.stderr);
    List<String> kc = new Command(k8s.lines()).confs();
    assertTrue(kc.contains("spark.driver.resource.gpu.vendor=nvidia.com"), kc.toString());
    assertTrue(
        kc.contains(
            "spark.kubernetes.driver.podTemplateFile="
                + REPO.resolve("deploy/k8s/driver-pod-template-gpu.yaml")),
        kc.toString());
    String template = Files.readString(REPO.resolve("deploy/k8s/driver-pod-template-gpu.yaml"));
    assertTrue(
        template.contains("nvidia.com/gpu: 1")
            && template.contains("name: spark-kubernetes-driver"),
        template);

    Run cores = wrapper("spark-submit-yarn.sh", List.of("--driver-cores", "many"), List.of("run"));
    assertEquals(2, cores.exit);
    assertTrue(
        cores.stderr.contains("--driver-cores: expected a positive integer, got 'many'"),
        cores.stderr);
  }

  @Test
  void directMemoryIsCappedOnDriverAndExecutors() throws Exception {
    Run r =
        wrapper(
            "spark-submit-standalone.sh",
            List.of("--master", "spark://m:7077", "--max-direct-memory", "3g"),
            List.of("run"));
    assertEquals(0, r.exit, r.stderr);
    Command c = new Command(r.lines());
    assertTrue(c.driverJavaOptions().contains("-XX:MaxDirectMemorySize=3g"), c.driverJavaOptions());
    assertTrue(
        c.confs()
            .contains(
                "spark.executor.extraJavaOptions=-Dai.djl.offline=true -Dai.djl.default_engine=PyTorch"
                    + " -XX:MaxDirectMemorySize=3g"),
        c.toString());
    Run none =
        wrapper(
            "spark-submit-standalone.sh", List.of("--master", "spark://m:7077"), List.of("run"));
    assertFalse(none.stdout.contains("MaxDirectMemorySize"), "no cap unless asked: " + none.stdout);
    Run bad =
        wrapper(
            "spark-submit-standalone.sh",
            List.of("--master", "spark://m:7077", "--max-direct-memory", "half"),
            List.of("run"));
    assertEquals(2, bad.exit);
    assertTrue(
        bad.stderr.contains("--max-direct-memory: expected a size like 2g, got 'half'"),
        bad.stderr);
  }

  @Test
  void sparkConfPassthroughComesLastSoItOverrides() throws Exception {
    Run r =
        wrapper(
            "spark-submit-local.sh",
            List.of("--spark-conf", "spark.ui.port=4999", "--spark-conf", "spark.task.cpus=1"),
            List.of("run"));
    assertEquals(0, r.exit, r.stderr);
    List<String> confs = new Command(r.lines()).confs();
    assertEquals("spark.task.cpus=1", confs.get(confs.size() - 1));
    assertTrue(confs.contains("spark.ui.port=4999"));
  }

  @Test
  void badInvocationsAreRefusedWithTheReason() throws Exception {
    Run noJob = wrapper("spark-submit-local.sh", List.of(), List.of());
    assertEquals(2, noJob.exit);
    assertTrue(noJob.stderr.contains("no job command: put it after --"), noJob.stderr);

    Run unknown =
        wrapper("spark-submit-local.sh", List.of("--executor-count", "2"), List.of("run"));
    assertEquals(2, unknown.exit);
    assertTrue(unknown.stderr.contains("unknown option '--executor-count'"), unknown.stderr);

    Run cores = wrapper("spark-submit-yarn.sh", List.of("--executor-cores", "two"), List.of("run"));
    assertEquals(2, cores.exit);
    assertTrue(
        cores.stderr.contains("--executor-cores: expected a positive integer, got 'two'"),
        cores.stderr);

    Run memory =
        wrapper("spark-submit-yarn.sh", List.of("--executor-memory", "lots"), List.of("run"));
    assertEquals(2, memory.exit);
    assertTrue(
        memory.stderr.contains("--executor-memory: expected a size like 8g, got 'lots'"),
        memory.stderr);

    Run localGpu = wrapper("spark-submit-local.sh", List.of("--gpus"), List.of("run"));
    assertEquals(2, localGpu.exit);
    assertTrue(
        localGpu.stderr.contains("local mode does not assign GPUs to tasks"), localGpu.stderr);

    Run noMaster = wrapper("spark-submit-standalone.sh", List.of(), List.of("run"));
    assertEquals(2, noMaster.exit);
    assertTrue(noMaster.stderr.contains("--master spark://HOST:PORT is required"), noMaster.stderr);

    Run noImage =
        wrapper(
            "spark-submit-k8s.sh",
            List.of("--master", "k8s://https://api:6443"),
            List.of("run"),
            false);
    assertEquals(2, noImage.exit);
    assertTrue(noImage.stderr.contains("--image is required"), noImage.stderr);

    Run flavour =
        wrapper("spark-submit-local.sh", List.of("--pytorch-flavor", "cu128"), List.of("run"));
    assertEquals(2, flavour.exit);
    assertTrue(
        flavour.stderr.contains("--pytorch-flavor only applies with --libtorch"), flavour.stderr);
  }

  @Test
  void aMissingNativesJarStopsARealSubmissionNamingThePath() throws Exception {
    Path missing = tmp.resolve("nowhere/pytorch-native-cpu.jar");
    Run r =
        bash(
            List.of(
                script("spark-submit-local.sh"),
                "--app-jar",
                appJar.toString(),
                "--natives-jar",
                missing.toString(),
                "--",
                "run"),
            Map.of("SPARK_SUBMIT", fakeSparkSubmit().toString()));
    assertEquals(2, r.exit);
    assertTrue(r.stderr.contains("natives jar " + missing + " does not exist"), r.stderr);
    assertTrue(
        r.stderr.contains("--libtorch DIR"), "the message names the alternative: " + r.stderr);
  }

  @Test
  void aRealSubmissionRunsExactlyTheDryRunCommand() throws Exception {
    List<String> options =
        List.of("--executors", "2", "--executor-cores", "2", "--master", "spark://m:7077");
    List<String> job =
        List.of("run", "--conf", "prune.final-threshold=0.03", "--output", "/data/runs/a b");
    Run dry = wrapper("spark-submit-standalone.sh", options, job);
    assertEquals(0, dry.exit, dry.stderr);
    Path fake = fakeSparkSubmit();
    List<String> args =
        new ArrayList<>(
            List.of(
                script("spark-submit-standalone.sh"),
                "--app-jar",
                appJar.toString(),
                "--natives-jar",
                nativesJar.toString()));
    args.addAll(options);
    args.add("--");
    args.addAll(job);
    Run real = bash(args, Map.of("SPARK_SUBMIT", fake.toString()));
    assertEquals(0, real.exit, real.stderr);
    List<String> expected = new ArrayList<>(new Command(dry.lines()).argvAfterEnv());
    expected.remove(0); // the spark-submit path itself
    assertEquals("DJL_OFFLINE=true", real.lines().get(0), "the environment spark-submit ran with");
    assertEquals(expected, real.lines().subList(1, real.lines().size()));
  }

  // ------------------------------------------------------------------------------ GPU discovery

  @Test
  void gpuDiscoveryListsTheIndicesNvidiaSmiReports() throws Exception {
    Path bin = Files.createDirectories(tmp.resolve("bin"));
    executable(
        bin.resolve("nvidia-smi"),
        """
        #!/bin/bash
        [[ "$*" == "--query-gpu=index --format=csv,noheader" ]] || { echo "unexpected args: $*" >&2; exit 9; }
        printf '0\\n1\\n3\\n'
        """);
    Run r = bash(List.of(script("gpu-discovery.sh")), Map.of("PATH", bin + ":/usr/bin:/bin"));
    assertEquals(0, r.exit, r.stderr);
    assertEquals("{\"name\": \"gpu\", \"addresses\": [\"0\",\"1\",\"3\"]}", r.stdout.strip());
  }

  @Test
  void gpuDiscoveryReportsOnlyTheGpusCudaVisibleDevicesLists() throws Exception {
    Path bin = Files.createDirectories(tmp.resolve("bin"));
    executable(
        bin.resolve("nvidia-smi"),
        """
        #!/bin/bash
        printf '0\\n1\\n2\\n3\\n'
        """);
    Map<String, String> cases = new java.util.LinkedHashMap<>();
    cases.put("2,3", "[\"2\",\"3\"]");
    cases.put("3, 1", "[\"3\",\"1\"]");
    cases.put("", "[]");
    cases.put("2,-1,3", "[\"2\"]");
    cases.put("1,7,2", "[\"1\"]");
    for (Map.Entry<String, String> e : cases.entrySet()) {
      Run r =
          bash(
              List.of(script("gpu-discovery.sh")),
              Map.of("PATH", bin + ":/usr/bin:/bin", "CUDA_VISIBLE_DEVICES", e.getKey()));
      assertEquals(0, r.exit, r.stderr);
      assertEquals(
          "{\"name\": \"gpu\", \"addresses\": " + e.getValue() + "}",
          r.stdout.strip(),
          "CUDA_VISIBLE_DEVICES='" + e.getKey() + "'");
      // what the job then does with each reported address: its position in the list
      for (String address : e.getValue().replaceAll("[\\[\\]\"]", "").split(",")) {
        if (!address.isEmpty()) {
          int ordinal = io.capprune.spark.worker.GpuAddresses.cudaOrdinal(address, e.getKey());
          assertTrue(
              ordinal >= 0 && ordinal < e.getKey().split(",").length, address + " -> " + ordinal);
        }
      }
    }
    Run uuid =
        bash(
            List.of(script("gpu-discovery.sh")),
            Map.of("PATH", bin + ":/usr/bin:/bin", "CUDA_VISIBLE_DEVICES", "GPU-8f6c3a1e"));
    assertEquals(1, uuid.exit);
    assertTrue(uuid.stderr.contains("cannot match UUIDs or MIG ids"), uuid.stderr);
    assertEquals("", uuid.stdout);
  }

  @Test
  void gpuDiscoveryWithoutNvidiaSmiReportsNoGpus() throws Exception {
    Path empty = Files.createDirectories(tmp.resolve("empty-bin"));
    Run r = bash(List.of(script("gpu-discovery.sh")), Map.of("PATH", empty.toString()));
    assertEquals(0, r.exit, r.stderr);
    assertEquals("{\"name\": \"gpu\", \"addresses\": []}", r.stdout.strip());
  }

  @Test
  void gpuDiscoveryFailsWhenNvidiaSmiFails() throws Exception {
    Path bin = Files.createDirectories(tmp.resolve("bin"));
    executable(
        bin.resolve("nvidia-smi"),
        """
        #!/bin/bash
        echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
        exit 9
        """);
    Run r = bash(List.of(script("gpu-discovery.sh")), Map.of("PATH", bin + ":/usr/bin:/bin"));
    assertEquals(1, r.exit);
    assertTrue(r.stderr.contains("nvidia-smi failed: NVIDIA-SMI has failed"), r.stderr);
    assertEquals("", r.stdout, "no half-formed JSON for Spark to parse");
  }

  // ------------------------------------------------------------------------------ Airflow DAG
  // check

  @Test
  void theDagPassesItsStaticCheckAndRendersTheSparkSubmitCommand() throws Exception {
    assumePython();
    Path jar = jarWithMainClass(true);
    Run r = checkDag(REPO.resolve("deploy/airflow/cap_prune_dag.py"), jar, "--date", "2025-03-02");
    assertEquals(0, r.exit, r.stderr + r.stdout);
    assertTrue(r.stdout.contains("check_dag: OK"), r.stdout);
    String cmd =
        r.lines().stream().filter(l -> l.startsWith("spark-submit ")).findFirst().orElseThrow();
    assertTrue(cmd.contains("--class " + MAIN), cmd);
    assertTrue(cmd.contains("--master yarn"), cmd);
    assertTrue(cmd.contains("--deploy-mode cluster"), cmd);
    assertTrue(cmd.contains("--conf spark.task.cpus=8") && cmd.contains("--executor-cores 8"), cmd);
    assertTrue(cmd.contains("--conf spark.yarn.appMasterEnv.DJL_OFFLINE=true"), cmd);
    assertTrue(
        cmd.contains(
            "hdfs:///apps/cap-prune/cap-prune.jar run --output hdfs:///cap-prune/runs/sst2/20250302 --resume"),
        "the per-run output is templated on the run date: " + cmd);
    assertFalse(cmd.contains("{{"), "every template rendered: " + cmd);
  }

  /**
   * What the integration tests run: the command as JSON, rendered for given params and connection.
   */
  @Test
  void theDagCheckPrintsTheCommandAsJsonRenderedWithTheGivenParams() throws Exception {
    assumePython();
    Run r =
        checkDag(
            REPO.resolve("deploy/airflow/cap_prune_dag.py"),
            jarWithMainClass(true),
            "--json",
            "--date",
            "2025-03-02",
            "--conn-master",
            "spark://127.0.0.1:7077",
            "--conn-deploy-mode",
            "client",
            "--param",
            "output_root=hdfs://nn:8020/it",
            "--param",
            "model=hdfs://nn:8020/m");
    assertEquals(0, r.exit, r.stderr + r.stdout);
    com.fasterxml.jackson.databind.JsonNode doc =
        new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.stdout);
    assertTrue(doc.path("ok").asBoolean(), r.stdout);
    assertEquals("hdfs://nn:8020/it", doc.path("params").path("output_root").asText());
    List<String> argv = new ArrayList<>();
    doc.path("tasks").get(0).path("command").forEach(a -> argv.add(a.asText()));
    assertEquals("prune_pipeline", doc.path("tasks").get(0).path("task_id").asText());
    // standalone client mode: the driver's environment is the process's, so env comes first
    assertEquals(
        List.of("env", "DJL_OFFLINE=true", "spark-submit", "--master", "spark://127.0.0.1:7077"),
        argv.subList(0, 5));
    String joined = String.join(" ", argv);
    assertTrue(joined.contains("--deploy-mode client"), joined);
    assertTrue(joined.contains("run --output hdfs://nn:8020/it/sst2/20250302 --resume"), joined);
    assertTrue(argv.contains("model=\"hdfs://nn:8020/m\""), joined);

    Run unknown =
        checkDag(
            REPO.resolve("deploy/airflow/cap_prune_dag.py"),
            jarWithMainClass(true),
            "--param",
            "outptu_root=x");
    assertEquals(2, unknown.exit, unknown.stdout);
    assertTrue(
        unknown.stderr.contains("--param outptu_root: not a param of the DAG"), unknown.stderr);
  }

  @Test
  void theDagCanRequestGpusWithTheCudaLibtorchInsteadOfTheNativesJar() throws Exception {
    assumePython();
    Path gpuDag = dagWith(Map.of("GPUS = False", "GPUS = True"));
    Run r = checkDag(gpuDag, jarWithMainClass(true), "--json");
    assertEquals(0, r.exit, r.stderr + r.stdout);
    List<String> argv = new ArrayList<>();
    new com.fasterxml.jackson.databind.ObjectMapper()
        .readTree(r.stdout)
        .path("tasks")
        .get(0)
        .path("command")
        .forEach(a -> argv.add(a.asText()));
    List<String> confs = new ArrayList<>();
    for (int i = 0; i + 1 < argv.size(); i++) {
      if (argv.get(i).equals("--conf")) {
        confs.add(argv.get(i + 1));
      }
    }
    for (String expected :
        List.of(
            "spark.executor.resource.gpu.amount=1",
            "spark.task.resource.gpu.amount=1",
            "spark.executor.resource.gpu.discoveryScript=/opt/cap-prune/gpu-discovery.sh",
            "spark.dynamicAllocation.enabled=false",
            "spark.executorEnv.PYTORCH_LIBRARY_PATH=/opt/libtorch/lib",
            "spark.executorEnv.PYTORCH_FLAVOR=cu128",
            "spark.yarn.appMasterEnv.PYTORCH_LIBRARY_PATH=/opt/libtorch/lib",
            "spark.task.cpus=8")) {
      assertTrue(confs.contains(expected), expected + " missing: " + argv);
    }
    assertFalse(argv.contains("--jars"), "no CPU natives jar on GPU executors: " + argv);

    // The default DAG stays a CPU DAG with the natives jar.
    Run cpu = checkDag(REPO.resolve("deploy/airflow/cap_prune_dag.py"), jarWithMainClass(true));
    assertEquals(0, cpu.exit, cpu.stderr);
    assertFalse(cpu.stdout.contains("resource.gpu"), cpu.stdout);
    assertTrue(
        cpu.stdout.contains(
            "--jars hdfs:///apps/cap-prune/pytorch-native-cpu-2.7.1-linux-x86_64.jar"),
        cpu.stdout);
  }

  @Test
  void theDagCheckRejectsGpusWithoutTheCudaLibtorch() throws Exception {
    assumePython();
    Run noLibtorch =
        checkDag(
            dagWith(
                Map.of(
                    "GPUS = False",
                    "GPUS = True",
                    "    \"spark.executorEnv.PYTORCH_LIBRARY_PATH\": LIBTORCH_DIR,\n",
                    "")),
            jarWithMainClass(true));
    assertEquals(1, noLibtorch.exit, noLibtorch.stdout);
    assertTrue(noLibtorch.stderr.contains("GPUs need the CUDA libtorch"), noLibtorch.stderr);

    Run cpuJar =
        checkDag(
            dagWith(
                Map.of(
                    "GPUS = False",
                    "GPUS = True",
                    "jars=None if GPUS else \"{{ params.natives_jar }}\"",
                    "jars=\"{{ params.natives_jar }}\"")),
            jarWithMainClass(true));
    assertEquals(1, cpuJar.exit, cpuJar.stdout);
    assertTrue(cpuJar.stderr.contains("jars ships the CPU natives jar"), cpuJar.stderr);

    Run twoGpus =
        checkDag(
            dagWith(
                Map.of(
                    "GPUS = False",
                    "GPUS = True",
                    "\"spark.executor.resource.gpu.amount\": \"1\"",
                    "\"spark.executor.resource.gpu.amount\": \"2\"")),
            jarWithMainClass(true));
    assertEquals(1, twoGpus.exit, twoGpus.stdout);
    assertTrue(
        twoGpus.stderr.contains("spark.executor.resource.gpu.amount must be 1"), twoGpus.stderr);
  }

  @Test
  void theDagCheckRejectsAnUnknownOperatorArgument() throws Exception {
    assumePython();
    Path broken = brokenDag("executor_memory=\"16g\"", "executor_mem=\"16g\"");
    Run r = checkDag(broken, jarWithMainClass(true));
    assertEquals(1, r.exit, r.stdout);
    assertTrue(r.stderr.contains(broken + ":"), "names the file and line: " + r.stderr);
    assertTrue(r.stderr.contains("unknown keyword argument 'executor_mem'"), r.stderr);
  }

  @Test
  void theDagCheckRejectsAMainClassThatIsNotInTheJar() throws Exception {
    assumePython();
    Run r = checkDag(REPO.resolve("deploy/airflow/cap_prune_dag.py"), jarWithMainClass(false));
    assertEquals(1, r.exit, r.stdout);
    assertTrue(r.stderr.contains("io/capprune/spark/cli/CapPruneMain.class is not in"), r.stderr);
  }

  @Test
  void theDagCheckRejectsUnwiredTasksAndBrokenJobConstraints() throws Exception {
    assumePython();
    Run unwired =
        checkDag(brokenDag("    prune_pipeline >> publish\n", "\n"), jarWithMainClass(true));
    assertEquals(1, unwired.exit);
    assertTrue(
        unwired.stderr.contains("task publish_model (publish) is not wired"), unwired.stderr);

    Run cpus =
        checkDag(
            brokenDag("\"spark.task.cpus\": str(EXECUTOR_CORES)", "\"spark.task.cpus\": \"1\""),
            jarWithMainClass(true));
    assertEquals(1, cpus.exit);
    assertTrue(
        cpus.stderr.contains(
            "one task per executor: conf spark.task.cpus (1) must equal executor_cores (8)"),
        cpus.stderr);

    Run literal =
        checkDag(
            brokenDag("driver_memory=\"16g\"", "driver_memory=\"{{ params.memory }}\""),
            jarWithMainClass(true));
    assertEquals(1, literal.exit);
    assertTrue(
        literal.stderr.contains("'driver_memory' holds a template but is not a templated field"),
        literal.stderr);
  }

  // ------------------------------------------------------------------------------ helpers

  private static void assertOffline(Command c) {
    assertTrue(c.driverJavaOptions().contains("-Dai.djl.offline=true"), c.toString());
    assertTrue(
        c.confs()
            .contains(
                "spark.executor.extraJavaOptions=-Dai.djl.offline=true -Dai.djl.default_engine=PyTorch"),
        c.toString());
    assertTrue(c.confs().contains("spark.executorEnv.DJL_OFFLINE=true"), c.toString());
  }

  private Run wrapper(String name, List<String> options, List<String> job) throws Exception {
    return wrapper(name, options, job, true);
  }

  /** Runs a wrapper with --dry-run; {@code localJars} points it at this test's stand-in jars. */
  private Run wrapper(String name, List<String> options, List<String> job, boolean localJars)
      throws Exception {
    List<String> args = new ArrayList<>(List.of(script(name), "--dry-run"));
    if (localJars) {
      args.addAll(List.of("--app-jar", appJar.toString(), "--natives-jar", nativesJar.toString()));
    }
    args.addAll(options);
    if (!job.isEmpty()) {
      args.add("--");
      args.addAll(job);
    }
    return bash(args, Map.of());
  }

  private static String script(String name) {
    return REPO.resolve("deploy").resolve(name).toString();
  }

  private Path fakeSparkSubmit() throws IOException {
    return executable(
        tmp.resolve("spark-submit"),
        """
        #!/bin/bash
        echo "DJL_OFFLINE=${DJL_OFFLINE-}"
        printf '%s\\n' "$@"
        """);
  }

  private static Path executable(Path file, String text) throws IOException {
    Files.writeString(file, text);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    return file;
  }

  /** The DAG with each key of {@code replacements} (which it must hold) replaced by its value. */
  private Path dagWith(Map<String, String> replacements) throws IOException {
    String dag = Files.readString(REPO.resolve("deploy/airflow/cap_prune_dag.py"));
    for (Map.Entry<String, String> e : replacements.entrySet()) {
      assertTrue(dag.contains(e.getKey()), "the DAG no longer holds " + e.getKey());
      dag = dag.replace(e.getKey(), e.getValue());
    }
    return Files.writeString(
        tmp.resolve("dag_" + Integer.toHexString(replacements.hashCode()) + ".py"), dag);
  }

  private Path brokenDag(String from, String to) throws IOException {
    String dag = Files.readString(REPO.resolve("deploy/airflow/cap_prune_dag.py"));
    assertTrue(dag.contains(from), "the DAG no longer holds " + from);
    return Files.writeString(tmp.resolve("broken_dag.py"), dag.replace(from, to));
  }

  /** A jar holding the real compiled main class (or, for the negative case, only another class). */
  private Path jarWithMainClass(boolean withMain) throws IOException {
    Path jar = tmp.resolve(withMain ? "app-with-main.jar" : "app-without-main.jar");
    String entry =
        withMain ? MAIN.replace('.', '/') + ".class" : "io/capprune/spark/cli/CliArgs.class";
    try (OutputStream out = Files.newOutputStream(jar);
        JarOutputStream j = new JarOutputStream(out);
        InputStream in = CapPruneMain.class.getResourceAsStream("/" + entry)) {
      j.putNextEntry(new ZipEntry(entry));
      in.transferTo(j);
      j.closeEntry();
    }
    return jar;
  }

  private Run checkDag(Path dag, Path jar, String... extra) throws Exception {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "python3",
                REPO.resolve("deploy/airflow/check_dag.py").toString(),
                dag.toString(),
                "--jar",
                jar.toString()));
    cmd.addAll(List.of(extra));
    return run(cmd, Map.of());
  }

  private static void assumePython() {
    boolean ok;
    try {
      ok = run(List.of("python3", "-c", "import ast, zipfile, py_compile"), Map.of()).exit == 0;
    } catch (Exception e) {
      ok = false;
    }
    assumeTrue(ok, "python3 is not available: the DAG check is skipped");
  }

  private static Run bash(List<String> args, Map<String, String> env) throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add("/bin/bash");
    cmd.addAll(args);
    return run(cmd, env);
  }

  private static Run run(List<String> cmd, Map<String, String> env) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(cmd);
    Map<String, String> e = pb.environment();
    // The scripts read these; the test decides them, not the machine it runs on.
    for (String k : new HashMap<>(e).keySet()) {
      if (k.startsWith("CAP_PRUNE_")
          || k.equals("SPARK_HOME")
          || k.equals("SPARK_SUBMIT")
          || k.equals("CUDA_VISIBLE_DEVICES")) {
        e.remove(k);
      }
    }
    e.putAll(env);
    Path out = Files.createTempFile("deploy-test", ".out");
    Path err = Files.createTempFile("deploy-test", ".err");
    try {
      pb.redirectOutput(out.toFile()).redirectError(err.toFile());
      Process p = pb.start();
      if (!p.waitFor(60, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new AssertionError("timed out: " + cmd);
      }
      return new Run(
          p.exitValue(),
          Files.readString(out, StandardCharsets.UTF_8),
          Files.readString(err, StandardCharsets.UTF_8));
    } finally {
      Files.deleteIfExists(out);
      Files.deleteIfExists(err);
    }
  }

  private static Path findRepo() {
    Path p = Paths.get("").toAbsolutePath();
    while (p != null && !Files.isRegularFile(p.resolve("deploy/common.sh"))) {
      p = p.getParent();
    }
    if (p == null) {
      throw new IllegalStateException(
          "no deploy/common.sh above " + Paths.get("").toAbsolutePath());
    }
    return p;
  }

  private record Run(int exit, String stdout, String stderr) {
    List<String> lines() {
      return stdout.isEmpty() ? List.of() : List.of(stdout.split("\n"));
    }
  }

  /**
   * A dry-run command: "env", NAME=VALUE..., spark-submit, its options, the app jar, the job's
   * args.
   */
  private record Command(List<String> argv) {
    Command {
      assertEquals("env", argv.get(0), "dry-run output starts with env: " + argv);
    }

    List<String> env() {
      return argv.subList(
          1, 1 + (int) argv.stream().skip(1).takeWhile(a -> a.matches("[A-Z_]+=.*")).count());
    }

    List<String> argvAfterEnv() {
      return argv.subList(1 + env().size(), argv.size());
    }

    /**
     * spark-submit's options: up to the application jar (the first argument ending in .jar outside
     * --jars).
     */
    private int appJarIndex() {
      List<String> a = argvAfterEnv();
      for (int i = 1; i < a.size(); i++) {
        if (a.get(i).startsWith("--")) {
          i++;
        } else {
          return i;
        }
      }
      throw new AssertionError("no application jar in " + argv);
    }

    String option(String name) {
      List<String> a = argvAfterEnv().subList(0, appJarIndex());
      int i = a.indexOf(name);
      return i < 0 ? null : a.get(i + 1);
    }

    List<String> confs() {
      List<String> a = argvAfterEnv().subList(0, appJarIndex());
      List<String> out = new ArrayList<>();
      for (int i = 0; i < a.size() - 1; i++) {
        if (a.get(i).equals("--conf")) {
          out.add(a.get(i + 1));
        }
      }
      return out;
    }

    String driverJavaOptions() {
      return confs().stream()
          .filter(c -> c.startsWith("spark.driver.extraJavaOptions="))
          .findFirst()
          .orElse("");
    }

    List<String> jobArgs(Path appJar) {
      return jobArgsAfter(appJar.toString());
    }

    List<String> jobArgsAfter(String appJar) {
      List<String> a = argvAfterEnv();
      assertEquals(
          appJar, a.get(appJarIndex()), "the application jar follows spark-submit's options");
      return a.subList(appJarIndex() + 1, a.size());
    }

    @Override
    public String toString() {
      return String.join("\n", argv);
    }
  }
}
