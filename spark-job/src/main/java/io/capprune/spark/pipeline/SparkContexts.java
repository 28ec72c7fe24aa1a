package io.capprune.spark.pipeline;

import io.capprune.spark.config.JobConfig;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

/** Creates the job's SparkContext: spark-submit's settings win, cap.spark.* fills the gaps. */
public final class SparkContexts {
  private SparkContexts() {}

  public static JavaSparkContext create(JobConfig config, String appName) {
    SparkConf conf = new SparkConf()
        .setIfMissing("spark.master", config.spark().master())
        .setIfMissing("spark.app.name", appName)
        // DJL must never download: offline on executors too, whoever launched the job.
        .setIfMissing("spark.executorEnv.DJL_OFFLINE", "true")
        .setIfMissing("spark.executor.extraJavaOptions", "-Dai.djl.offline=true -Dai.djl.default_engine=PyTorch")
        .setIfMissing("spark.ui.showConsoleProgress", "false")
        // Gradients and weights are large; Spark's default 1 GB limit on collected results is not
        // about them (treeAggregate results), but a step's broadcast must fit in executor memory.
        .setIfMissing("spark.driver.maxResultSize", "4g")
        // The cached shards stay where the first job puts them; if that job starts before every
        // executor registered, all training runs on the few that had. Wait for all of them.
        .setIfMissing("spark.scheduler.minRegisteredResourcesRatio", "1.0")
        .setIfMissing("spark.scheduler.maxRegisteredResourcesWaitingTime", "60s");
    if (conf.get("spark.master").startsWith("local")) {
      conf.setIfMissing("spark.driver.host", "127.0.0.1").setIfMissing("spark.ui.enabled", "false");
    }
    JavaSparkContext sc = new JavaSparkContext(conf);
    sc.setLogLevel("WARN");
    return sc;
  }
}
