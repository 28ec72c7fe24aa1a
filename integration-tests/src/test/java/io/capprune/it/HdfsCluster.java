package io.capprune.it;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;

/**
 * A NameNode and one DataNode in this JVM (hadoop-client-minicluster: one shaded jar that lives
 * next to Spark 4, unlike the unshaded hadoop-minicluster). Spark drivers and executors in other
 * JVMs reach it at {@link #uri()} over loopback RPC, like a real cluster.
 */
public final class HdfsCluster implements AutoCloseable {

  private final MiniDFSCluster cluster;
  private final URI uri;

  private HdfsCluster(MiniDFSCluster cluster) {
    this.cluster = cluster;
    this.uri = URI.create("hdfs://127.0.0.1:" + cluster.getNameNodePort());
  }

  public static HdfsCluster start(Path baseDir) throws IOException {
    Configuration conf = new Configuration();
    conf.set("dfs.namenode.http-address", "127.0.0.1:0");
    conf.set("dfs.datanode.address", "127.0.0.1:0");
    conf.set("dfs.datanode.http.address", "127.0.0.1:0");
    conf.set("dfs.datanode.ipc.address", "127.0.0.1:0");
    // waitActive() waits for the DataNode's first heartbeat: 1 s instead of 3 s
    conf.set("dfs.heartbeat.interval", "1");
    clientProperties().forEach(conf::set);
    MiniDFSCluster cluster =
        new MiniDFSCluster.Builder(conf, baseDir.toFile()).numDataNodes(1).format(true).build();
    try {
      cluster.waitActive();
      return new HdfsCluster(cluster);
    } catch (IOException | RuntimeException e) {
      cluster.shutdown(true);
      throw e;
    }
  }

  /** {@code hdfs://127.0.0.1:<port>}. */
  public URI uri() {
    return uri;
  }

  /** {@code hdfs://127.0.0.1:<port>/<path>}. */
  public URI uri(String path) {
    return uri.resolve(path.startsWith("/") ? path : "/" + path);
  }

  /**
   * What a client in another JVM must set: one DataNode, so files must not ask for three replicas
   * (they would be written but stay under-replicated, and the NameNode would keep trying).
   */
  public static Map<String, String> clientProperties() {
    return Map.of("dfs.replication", "1");
  }

  /** A client in this JVM, for checking what a Spark job wrote. */
  public FileSystem fileSystem() throws IOException {
    Configuration conf = new Configuration();
    clientProperties().forEach(conf::set);
    return FileSystem.newInstance(uri, conf);
  }

  @Override
  public void close() {
    cluster.shutdown(true);
  }
}
