package io.capprune.spark.io;

import io.capprune.spark.config.JobConfig;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Every byte the job reads or writes goes through the Hadoop FileSystem API, so a local path,
 * file://, hdfs:// and s3a:// behave the same. This class holds the Hadoop configuration (S3A
 * settings from {@code cap.s3}) and small helpers around it.
 */
public final class Storage {
  private final Configuration conf;

  public Storage(Configuration conf) {
    this.conf = conf;
  }

  /** Hadoop settings for the job: the given base (Spark's) plus cap.s3.* mapped to fs.s3a.*. */
  public static Configuration hadoopConfiguration(Configuration base, JobConfig.S3Settings s3) {
    Configuration c = new Configuration(base);
    if (!s3.endpoint().isEmpty()) {
      c.set("fs.s3a.endpoint", s3.endpoint());
      c.setBoolean("fs.s3a.connection.ssl.enabled", s3.endpoint().startsWith("https"));
    }
    if (!s3.region().isEmpty()) {
      c.set("fs.s3a.endpoint.region", s3.region());
    }
    if (s3.pathStyleAccess()) {
      c.setBoolean("fs.s3a.path.style.access", true);
    }
    if (!s3.accessKey().isEmpty()) {
      c.set("fs.s3a.access.key", s3.accessKey());
      c.set("fs.s3a.secret.key", s3.secretKey());
      c.set(
          "fs.s3a.aws.credentials.provider",
          "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider");
    }
    // Fail fast when storage is unreachable instead of retrying for minutes (S3A's defaults retry a
    // refused connection for about 2 minutes). setIfUnset cannot do this: core-default.xml already
    // sets every one of these keys, so only a value the user gave is kept.
    setUnlessGiven(c, "fs.s3a.attempts.maximum", "2");
    setUnlessGiven(c, "fs.s3a.retry.limit", "2");
    // S3A raises anything under 15 s to 15 s, with a warning on every run
    setUnlessGiven(c, "fs.s3a.connection.establish.timeout", "15s");
    // HDFS RPC: a NameNode that refuses or does not answer the connection
    setUnlessGiven(c, "ipc.client.connect.max.retries", "2");
    setUnlessGiven(c, "ipc.client.connect.retry.interval", "500");
    setUnlessGiven(c, "ipc.client.connect.max.retries.on.timeouts", "2");
    setUnlessGiven(c, "ipc.client.connect.timeout", "5000");
    return c;
  }

  /** Sets {@code key} unless a value other than Hadoop's *-default.xml one is there already. */
  static void setUnlessGiven(Configuration c, String key, String value) {
    String[] sources = c.getPropertySources(key);
    boolean onlyDefault =
        c.get(key) == null
            || sources == null
            || java.util.Arrays.stream(sources).allMatch(s -> s.endsWith("-default.xml"));
    if (onlyDefault) {
      c.set(key, value, "cap-prune fail-fast default");
    }
  }

  public Configuration conf() {
    return conf;
  }

  /** A location given by the user: a plain local path or any URI Hadoop knows. */
  public static Path path(String location) {
    if (location.matches("^[a-zA-Z][a-zA-Z0-9+.-]*://.*")) {
      return new Path(URI.create(location));
    }
    return new Path(new java.io.File(location).getAbsoluteFile().toURI());
  }

  public FileSystem fs(Path p) {
    try {
      return p.getFileSystem(conf);
    } catch (IOException e) {
      throw new StorageException("cannot open the file system of " + p + ": " + e.getMessage(), e);
    }
  }

  public boolean exists(Path p) {
    try {
      return fs(p).exists(p);
    } catch (IOException e) {
      throw new StorageException("cannot reach " + p + ": " + e.getMessage(), e);
    }
  }

  public InputStream open(Path p) {
    try {
      return fs(p).open(p);
    } catch (IOException e) {
      throw new StorageException("cannot read " + p + ": " + e.getMessage(), e);
    }
  }

  public String readString(Path p) {
    try (InputStream in = open(p)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new StorageException("cannot read " + p + ": " + e.getMessage(), e);
    }
  }

  /** Creates a new file; an existing file is replaced only when {@code overwrite} is true. */
  public OutputStream create(Path p, boolean overwrite) {
    try {
      FSDataOutputStream out = fs(p).create(p, overwrite);
      return out;
    } catch (IOException e) {
      throw new StorageException("cannot write " + p + ": " + e.getMessage(), e);
    }
  }

  public void writeString(Path p, String content, boolean overwrite) {
    writeBytes(p, content.getBytes(StandardCharsets.UTF_8), overwrite);
  }

  public void writeBytes(Path p, byte[] content, boolean overwrite) {
    try (OutputStream out = create(p, overwrite)) {
      out.write(content);
    } catch (IOException e) {
      throw new StorageException("cannot write " + p + ": " + e.getMessage(), e);
    }
  }

  public void delete(Path p) {
    try {
      fs(p).delete(p, true);
    } catch (IOException e) {
      throw new StorageException("cannot delete " + p + ": " + e.getMessage(), e);
    }
  }

  public org.apache.hadoop.fs.FileStatus[] list(Path dir) {
    try {
      FileSystem fs = fs(dir);
      return fs.exists(dir) ? fs.listStatus(dir) : new org.apache.hadoop.fs.FileStatus[0];
    } catch (IOException e) {
      throw new StorageException("cannot list " + dir + ": " + e.getMessage(), e);
    }
  }

  /** Storage that cannot be used; the message names the location. */
  public static final class StorageException extends UncheckedIOException {
    private static final long serialVersionUID = 1L;

    public StorageException(String message, IOException cause) {
      super(message, cause);
    }
  }
}
