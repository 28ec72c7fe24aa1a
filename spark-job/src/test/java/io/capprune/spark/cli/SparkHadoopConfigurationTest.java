package io.capprune.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** spark-submit hands --conf entries to a client-mode driver as system properties. */
class SparkHadoopConfigurationTest {

  @AfterEach
  void clear() {
    System.clearProperty("spark.hadoop.dfs.replication");
    System.clearProperty("spark.hadoop.fs.s3a.endpoint");
    System.clearProperty("spark.executor.memory");
  }

  @Test
  void sparkHadoopEntriesReachTheDriversHadoopConfiguration() {
    System.setProperty("spark.hadoop.dfs.replication", "1");
    System.setProperty("spark.hadoop.fs.s3a.endpoint", "http://127.0.0.1:9");
    System.setProperty("spark.executor.memory", "1g");
    Configuration conf = CapPruneMain.sparkHadoopConfiguration();
    assertEquals("1", conf.get("dfs.replication"));
    assertEquals("http://127.0.0.1:9", conf.get("fs.s3a.endpoint"));
    assertNull(conf.get("executor.memory"));
    assertNull(conf.get("spark.executor.memory"));
  }
}
