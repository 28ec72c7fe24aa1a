package io.capprune.spark.io;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.capprune.spark.config.JobConfig;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;

/** The S3A fail-fast settings must win over core-default.xml but not over what the user set. */
class StorageFailFastTest {

  @Test
  void failFastRetriesReplaceHadoopsDefaults() {
    Configuration base = new Configuration();
    // core-default.xml already has these keys: a setIfUnset would keep S3A's minutes of retries
    assertEquals("5", base.get("fs.s3a.attempts.maximum"));
    Configuration c = Storage.hadoopConfiguration(base, JobConfig.load(null, List.of()).s3());
    assertEquals("2", c.get("fs.s3a.attempts.maximum"));
    assertEquals("2", c.get("fs.s3a.retry.limit"));
    assertEquals("15s", c.get("fs.s3a.connection.establish.timeout"));
  }

  @Test
  void aValueTheUserGaveIsKept() {
    Configuration base = new Configuration();
    base.set("fs.s3a.attempts.maximum", "9", "spark.hadoop.* (spark-submit --conf)");
    base.set("fs.s3a.retry.limit", "1");
    Configuration c = Storage.hadoopConfiguration(base, JobConfig.load(null, List.of()).s3());
    assertEquals("9", c.get("fs.s3a.attempts.maximum"));
    assertEquals("1", c.get("fs.s3a.retry.limit"));
  }
}
