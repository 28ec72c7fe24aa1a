package io.capprune.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.sync.ResponseTransformer;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * An S3 endpoint on 127.0.0.1: s3proxy in a child JVM (in-process it would bring 150 jars and a
 * second SLF4J binding onto the test classpath), objects kept in its memory, one bucket created up
 * front because S3A never creates buckets.
 */
public final class S3Server implements AutoCloseable {

  public static final String REGION = "us-east-1";
  private static final String ACCESS_KEY = "it-access-key";
  private static final String SECRET_KEY = "it-secret-key";

  private final ChildProcess process;
  private final int port;
  private final String bucket;
  private final S3Client client;

  private S3Server(ChildProcess process, int port, String bucket) {
    this.process = process;
    this.port = port;
    this.bucket = bucket;
    this.client =
        S3Client.builder()
            .endpointOverride(endpoint())
            .forcePathStyle(true)
            .region(Region.of(REGION))
            .credentialsProvider(
                StaticCredentialsProvider.create(
                    AwsBasicCredentials.create(ACCESS_KEY, SECRET_KEY)))
            .build();
  }

  public static S3Server start(ItSettings settings, String bucket, Duration timeout)
      throws InterruptedException {
    Path jar =
        ItSettings.requireFile(
            settings.s3proxyJar(),
            "run mvn -pl integration-tests -am test-compile (maven-dependency-plugin copies s3proxy there)");
    int port = Ports.free();
    Path dir = settings.buildDir().resolve("it-s3proxy");
    Path properties = dir.resolve("s3proxy.properties");
    try {
      Files.createDirectories(dir);
      Files.writeString(
          properties,
          String.join(
              "\n",
              "s3proxy.endpoint=http://127.0.0.1:" + port,
              "s3proxy.authorization=aws-v2-or-v4",
              "s3proxy.identity=" + ACCESS_KEY,
              "s3proxy.credential=" + SECRET_KEY,
              "jclouds.provider=transient-nio2",
              "jclouds.identity=" + ACCESS_KEY,
              "jclouds.credential=" + SECRET_KEY,
              ""));
    } catch (IOException e) {
      throw new UncheckedIOException("could not write " + properties, e);
    }
    List<String> command =
        new ArrayList<>(
            List.of(
                SparkStandaloneCluster.javaExecutable(),
                "-Xmx256m",
                "-jar",
                jar.toString(),
                "--properties",
                properties.toString()));
    ChildProcess process =
        ChildProcess.start(
            "s3proxy", command, Map.of(), dir, settings.logDir().resolve("s3proxy.log"));
    S3Server server = null;
    try {
      Ports.awaitListening(port, process, timeout);
      server = new S3Server(process, port, bucket);
      server.client.createBucket(b -> b.bucket(bucket));
      return server;
    } catch (RuntimeException | InterruptedException e) {
      if (server != null) {
        server.close();
      } else {
        process.close();
      }
      throw e;
    }
  }

  public URI endpoint() {
    return URI.create("http://127.0.0.1:" + port);
  }

  public String bucket() {
    return bucket;
  }

  /** {@code s3a://<bucket>/<key>}. */
  public URI s3aUri(String key) {
    return URI.create("s3a://" + bucket + "/" + (key.startsWith("/") ? key.substring(1) : key));
  }

  public ChildProcess process() {
    return process;
  }

  /** The SDK client the tests read results with (path style, static credentials, this endpoint). */
  public S3Client client() {
    return client;
  }

  /**
   * The S3A settings that reach this server; pass each as spark.hadoop.&lt;key&gt; to a Spark job.
   */
  public Map<String, String> s3aProperties() {
    return s3aProperties(endpoint());
  }

  /**
   * The same settings pointed at another endpoint (the unreachable-storage test uses a closed
   * port).
   */
  public static Map<String, String> s3aProperties(URI endpoint) {
    Map<String, String> p = new TreeMap<>();
    p.put("fs.s3a.endpoint", endpoint.toString());
    p.put("fs.s3a.endpoint.region", REGION);
    p.put("fs.s3a.path.style.access", "true");
    p.put("fs.s3a.connection.ssl.enabled", "false");
    p.put("fs.s3a.access.key", ACCESS_KEY);
    p.put("fs.s3a.secret.key", SECRET_KEY);
    p.put(
        "fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider");
    return p;
  }

  /** Keys under {@code prefix}, sorted. */
  public List<String> keys(String prefix) {
    return client
        .listObjectsV2Paginator(
            ListObjectsV2Request.builder().bucket(bucket).prefix(prefix).build())
        .contents()
        .stream()
        .map(S3Object::key)
        .sorted()
        .toList();
  }

  public String read(String key) {
    return client
        .getObject(b -> b.bucket(bucket).key(key), ResponseTransformer.toBytes())
        .asUtf8String();
  }

  @Override
  public void close() {
    try {
      client.close();
    } finally {
      process.close();
    }
  }
}
