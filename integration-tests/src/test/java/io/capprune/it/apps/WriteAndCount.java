package io.capprune.it.apps;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.JavaSparkContext;
import scala.Tuple2;

/**
 * The harness's own trivial Spark application. Executors write {@code records} lines to {@code
 * <output>/part-NNNNN} through the Hadoop FileSystem API, then a second job reads them back and
 * counts them (with a shuffle, so executors also talk to each other), and the driver writes {@code
 * <output>/_RESULT}: the counts plus which executor JVM (pid, parent pid, host, executor id) did
 * each task, as "write|count\tpartition\trecords\tpid\tppid\thost\texecutorId" lines.
 *
 * <p>Usage: {@code WriteAndCount <output-uri> <records> <partitions> [<task-millis>]}. The output
 * must not exist; storage is checked before the SparkContext starts, so unreachable storage fails
 * in seconds without asking the cluster for executors.
 */
public final class WriteAndCount {

  public static final String RESULT_FILE = "_RESULT";

  private WriteAndCount() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      System.err.println(
          "usage: WriteAndCount <output-uri> <records> <partitions> [<task-millis>]");
      System.exit(2);
    }
    URI output = URI.create(args[0]);
    long records = Long.parseLong(args[1]);
    int partitions = Integer.parseInt(args[2]);
    long taskMillis = args.length > 3 ? Long.parseLong(args[3]) : 1000;

    SparkConf sparkConf = new SparkConf();
    HashMap<String, String> hadoopProps = new HashMap<>();
    for (Tuple2<String, String> kv : sparkConf.getAllWithPrefix("spark.hadoop.")) {
      hadoopProps.put(kv._1(), kv._2());
    }

    try (FileSystem fs = FileSystem.newInstance(output, hadoopConf(hadoopProps))) {
      Path out = new Path(output);
      if (fs.exists(out)) {
        System.err.println(
            "WriteAndCount: output " + output + " already exists; refusing to overwrite it");
        System.exit(3);
      }
      fs.mkdirs(out);
    } catch (IOException e) {
      System.err.println("WriteAndCount: cannot reach output " + output + ": " + e);
      System.exit(4);
    }

    try (JavaSparkContext sc = new JavaSparkContext(sparkConf)) {
      List<Integer> ids = new ArrayList<>();
      for (int p = 0; p < partitions; p++) {
        ids.add(p);
      }
      List<String> writes =
          sc.parallelize(ids, partitions)
              .mapPartitions(
                  it -> writePartition(it, output, records, partitions, taskMillis, hadoopProps))
              .collect();

      String parts = output.toString().replaceAll("/+$", "") + "/part-*";
      List<String> counts =
          sc.textFile(parts, partitions)
              .mapPartitionsWithIndex(
                  (index, lines) -> countPartition(index, lines, taskMillis), false)
              .collect();
      long counted = counts.stream().mapToLong(c -> Long.parseLong(c.split("\t")[1])).sum();
      long distinct =
          sc.textFile(parts, partitions).map(line -> line.split("\t", 2)[0]).distinct(2).count();

      StringBuilder result = new StringBuilder();
      result.append("records_written=").append(records).append('\n');
      result.append("records_counted=").append(counted).append('\n');
      result.append("distinct_indices=").append(distinct).append('\n');
      result.append("driver_pid=").append(ProcessHandle.current().pid()).append('\n');
      writes.forEach(w -> result.append("write\t").append(w).append('\n'));
      counts.forEach(c -> result.append("count\t").append(c).append('\n'));
      try (FileSystem fs = FileSystem.newInstance(output, hadoopConf(hadoopProps));
          OutputStream os = fs.create(new Path(output.toString() + "/" + RESULT_FILE), false)) {
        os.write(result.toString().getBytes(StandardCharsets.UTF_8));
      }
      System.out.println(
          "WriteAndCount: wrote " + records + " records, counted " + counted + ", to " + output);
    }
  }

  /** Partition {@code p} writes the records {@code [p*n/P, (p+1)*n/P)} as "index\tvalue" lines. */
  private static Iterator<String> writePartition(
      Iterator<Integer> partitionIds,
      URI output,
      long records,
      int partitions,
      long taskMillis,
      Map<String, String> hadoopProps)
      throws IOException, InterruptedException {
    int p = partitionIds.next();
    long from = p * records / partitions;
    long to = (p + 1) * records / partitions;
    Path file = new Path(output.toString().replaceAll("/+$", "") + String.format("/part-%05d", p));
    try (FileSystem fs = FileSystem.newInstance(output, hadoopConf(hadoopProps));
        OutputStream os = fs.create(file, false)) {
      StringBuilder lines = new StringBuilder();
      for (long i = from; i < to; i++) {
        lines.append(i).append('\t').append("record-").append(i).append('\n');
      }
      os.write(lines.toString().getBytes(StandardCharsets.UTF_8));
    }
    // Hold the core for a moment so the next task is offered to the other executor.
    Thread.sleep(taskMillis);
    return List.of(p + "\t" + (to - from) + "\t" + whoAmI()).iterator();
  }

  private static Iterator<String> countPartition(int index, Iterator<String> lines, long taskMillis)
      throws InterruptedException {
    long n = 0;
    while (lines.hasNext()) {
      lines.next();
      n++;
    }
    Thread.sleep(taskMillis);
    return List.of(index + "\t" + n + "\t" + whoAmI()).iterator();
  }

  /**
   * pid, parent pid (the worker that launched this executor), host name and Spark executor id of
   * the JVM running this task.
   */
  private static String whoAmI() {
    try {
      ProcessHandle self = ProcessHandle.current();
      return self.pid()
          + "\t"
          + self.parent().map(ProcessHandle::pid).orElse(-1L)
          + "\t"
          + InetAddress.getLocalHost().getHostName()
          + "\t"
          + SparkEnv.get().executorId();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static Configuration hadoopConf(Map<String, String> props) {
    Configuration conf = new Configuration();
    props.forEach(conf::set);
    return conf;
  }
}
