package io.capprune.it;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RemoteIterator;
import software.amazon.awssdk.core.sync.ResponseTransformer;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;

/**
 * What a job wrote, read back through the storage's own client (the HDFS client, the AWS SDK), not
 * through the job's Hadoop FileSystem code: the checks then do not trust the code they check. Paths
 * are relative to the root (the run's output directory).
 */
public interface StoredFiles {

  /** A file under the root: relative path, size, modification time (ms; S3: LastModified). */
  record Entry(String path, long bytes, long modifiedMillis) {}

  /** Every file under the root, recursively, sorted by path. */
  List<Entry> list();

  byte[] read(String relativePath);

  String describe();

  static StoredFiles hdfs(FileSystem fs, Path root) {
    return new StoredFiles() {
      @Override
      public List<Entry> list() {
        try {
          List<Entry> out = new ArrayList<>();
          if (!fs.exists(root)) {
            return out;
          }
          String prefix = fs.makeQualified(root).toUri().getPath().replaceAll("/+$", "") + "/";
          RemoteIterator<LocatedFileStatus> it = fs.listFiles(root, true);
          while (it.hasNext()) {
            LocatedFileStatus s = it.next();
            out.add(
                new Entry(
                    s.getPath().toUri().getPath().substring(prefix.length()),
                    s.getLen(),
                    s.getModificationTime()));
          }
          out.sort(java.util.Comparator.comparing(Entry::path));
          return out;
        } catch (IOException e) {
          throw new UncheckedIOException("cannot list " + root, e);
        }
      }

      @Override
      public byte[] read(String relativePath) {
        Path p = new Path(root, relativePath);
        try (InputStream in = fs.open(p)) {
          return in.readAllBytes();
        } catch (IOException e) {
          throw new UncheckedIOException("cannot read " + p, e);
        }
      }

      @Override
      public String describe() {
        return root.toString();
      }
    };
  }

  static StoredFiles s3(S3Client client, String bucket, String prefix) {
    String dir = prefix.replaceAll("/+$", "") + "/";
    return new StoredFiles() {
      @Override
      public List<Entry> list() {
        List<Entry> out = new ArrayList<>();
        client
            .listObjectsV2Paginator(
                ListObjectsV2Request.builder().bucket(bucket).prefix(dir).build())
            .contents()
            .forEach(
                o -> {
                  // S3A's directory markers are empty keys ending in '/': not files
                  if (!o.key().endsWith("/")) {
                    out.add(
                        new Entry(
                            o.key().substring(dir.length()),
                            o.size(),
                            o.lastModified().toEpochMilli()));
                  }
                });
        out.sort(java.util.Comparator.comparing(Entry::path));
        return out;
      }

      @Override
      public byte[] read(String relativePath) {
        return client
            .getObject(b -> b.bucket(bucket).key(dir + relativePath), ResponseTransformer.toBytes())
            .asByteArray();
      }

      @Override
      public String describe() {
        return "s3://" + bucket + "/" + dir;
      }
    };
  }
}
