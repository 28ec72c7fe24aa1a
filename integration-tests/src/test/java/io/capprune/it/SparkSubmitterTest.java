package io.capprune.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Command-line building and SPARK_HOME layout, without starting anything. */
class SparkSubmitterTest {

  @TempDir Path dir;

  private ItSettings settings() {
    return new ItSettings(
        dir,
        dir.resolve("cp.txt"),
        dir.resolve("s3proxy.jar"),
        dir.resolve("app.jar"),
        List.of("-XX:+IgnoreUnrecognizedVMOptions", "--add-opens=java.base/java.nio=ALL-UNNAMED"),
        List.of("-Dai.djl.offline=true"));
  }

  private SparkHome sparkHome() throws Exception {
    Path sparkCore = Files.createFile(dir.resolve("spark-core_2.13-4.2.0.jar"));
    Path hadoop = Files.createFile(dir.resolve("hadoop-client-api-3.5.0.jar"));
    Files.writeString(dir.resolve("cp.txt"), sparkCore + File.pathSeparator + hadoop + "\n");
    return SparkHome.create(dir.resolve("cp.txt"), dir.resolve("spark-home"));
  }

  @Test
  void sparkHomeSymlinksEveryJarOfTheClasspathFile() throws Exception {
    SparkHome home = sparkHome();
    Path jars = dir.resolve("spark-home/jars");
    assertEquals(
        List.of("hadoop-client-api-3.5.0.jar", "spark-core_2.13-4.2.0.jar"),
        Files.list(jars).map(p -> p.getFileName().toString()).sorted().toList());
    assertTrue(Files.isSymbolicLink(jars.resolve("spark-core_2.13-4.2.0.jar")));
    assertEquals(jars + "/*", home.classpath());
    assertEquals("2.13", home.environment().get("SPARK_SCALA_VERSION"));
    assertEquals("127.0.0.1", home.environment().get("SPARK_LOCAL_IP"));
    // a second harness start in the same build directory must not trip over the old links
    SparkHome.create(dir.resolve("cp.txt"), dir.resolve("spark-home"));
  }

  @Test
  void sparkHomeRejectsAClasspathWithoutSparkNamingTheFile() throws Exception {
    Files.writeString(dir.resolve("cp.txt"), Files.createFile(dir.resolve("guava.jar")).toString());
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () -> SparkHome.create(dir.resolve("cp.txt"), dir.resolve("spark-home")));
    assertTrue(
        e.getMessage().contains(dir.resolve("cp.txt").toString())
            && e.getMessage().contains("spark-core"),
        e.getMessage());
    IllegalStateException missing =
        assertThrows(
            IllegalStateException.class,
            () -> SparkHome.create(dir.resolve("nope.txt"), dir.resolve("spark-home")));
    assertTrue(missing.getMessage().contains("nope.txt"), missing.getMessage());
  }

  @Test
  void commandIsSparkSubmitInClientModeWithConfJarsThenAppAndArgs() throws Exception {
    SparkSubmitter submitter = new SparkSubmitter(settings(), sparkHome());
    Map<String, String> conf = new LinkedHashMap<>();
    conf.put("spark.ui.enabled", "false");
    conf.put("spark.hadoop.dfs.replication", "1");
    List<String> command =
        submitter.command(
            new SparkSubmitter.Submission(
                "demo",
                "spark://127.0.0.1:7077",
                "io.example.Main",
                Path.of("/x/app.jar"),
                List.of(Path.of("/x/a.jar"), Path.of("/x/b.jar")),
                conf,
                List.of("hdfs://127.0.0.1:9000/out", "10")));

    assertEquals(
        List.of(
            dir.resolve("spark-home/bin/spark-submit").toString(),
            "--master",
            "spark://127.0.0.1:7077",
            "--deploy-mode",
            "client",
            "--name",
            "demo",
            "--class",
            "io.example.Main",
            "--driver-memory",
            "1g",
            "--driver-java-options",
            "-Dai.djl.offline=true",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            "spark.hadoop.dfs.replication=1",
            "--jars",
            "/x/a.jar,/x/b.jar",
            "/x/app.jar",
            "hdfs://127.0.0.1:9000/out",
            "10"),
        command);
    assertTrue(Files.isExecutable(dir.resolve("spark-home/bin/spark-submit")));
    assertTrue(Files.isExecutable(dir.resolve("spark-home/bin/spark-class")));
  }

  /**
   * The real deploy/spark-submit-standalone.sh, dry run: the sizing, natives jar and log config
   * become its options.
   */
  @Test
  void aWrapperSubmissionRunsDeployStandaloneWrapperWhoseDryRunNamesOurSparkSubmit()
      throws Exception {
    SparkHome home = sparkHome();
    SparkSubmitter submitter = new SparkSubmitter(settings(), home);
    Map<String, String> conf = SparkSubmitter.defaultConf(settings(), 2);
    conf.put("spark.locality.wait", "0s");
    SparkSubmitter.Submission s =
        new SparkSubmitter.Submission(
            "cap",
            "spark://127.0.0.1:7077",
            CapJob.MAIN_CLASS,
            Path.of("/x/cap-prune.jar"),
            List.of(Path.of("/x/natives.jar")),
            conf,
            List.of("run", "--output", "hdfs://h/o"),
            List.of("-Dlog4j2.configurationFile=/x/log4j2.properties"),
            CapJob.standaloneWrapper());

    List<String> command = submitter.command(s);
    assertEquals(CapJob.standaloneWrapper().toString(), command.get(0));
    assertEquals(
        List.of("--", "run", "--output", "hdfs://h/o"),
        command.subList(command.size() - 4, command.size()));

    List<String> printed = submitter.dryRun(s);
    assertEquals(
        List.of("env", "DJL_OFFLINE=true", home.sparkSubmit().toString()),
        printed.subList(0, 3),
        printed::toString);
    String joined = String.join(" ", printed);
    for (String expected :
        List.of(
            "--master spark://127.0.0.1:7077",
            "--deploy-mode client",
            "--executor-cores 1",
            "--executor-memory 1g",
            "--total-executor-cores 2",
            "--conf spark.task.cpus=1",
            "--driver-memory 1g",
            "--jars /x/natives.jar",
            "--conf spark.locality.wait=0s",
            "--class " + CapJob.MAIN_CLASS,
            "-Dlog4j2.configurationFile=/x/log4j2.properties")) {
      assertTrue(joined.contains(expected), () -> expected + " not in " + printed);
    }
    assertEquals(
        List.of("/x/cap-prune.jar", "run", "--output", "hdfs://h/o"),
        printed.subList(printed.size() - 4, printed.size()));
  }

  @Test
  void defaultConfWaitsForAllExecutorsAndKeepsDjlOffline() {
    Map<String, String> conf = SparkSubmitter.defaultConf(settings(), 2);
    assertEquals("2", conf.get("spark.cores.max"));
    assertEquals("1.0", conf.get("spark.scheduler.minRegisteredResourcesRatio"));
    assertEquals("-Dai.djl.offline=true", conf.get("spark.executor.extraJavaOptions"));
    assertEquals("true", conf.get("spark.executorEnv.DJL_OFFLINE"));
    assertEquals("127.0.0.1", conf.get("spark.driver.host"));
  }
}
