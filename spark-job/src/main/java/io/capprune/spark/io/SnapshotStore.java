package io.capprune.spark.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.core.checkpoint.Safetensors;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.HostTensor;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Snapshots, the unit of durability (docs/decisions.md decision 7): {@code <snapshots>/<step>/}
 * holds {@code state.safetensors} (weights, scores, masks, AdamW moments), {@code state.json}
 * (step, epoch, frozen names, seeds, configuration, metrics) and, written last, {@code _COMMITTED},
 * which lists every file with its size and SHA-256. S3 has no atomic rename, so the marker is what
 * makes a snapshot exist: a directory without it is ignored (with a warning) on resume.
 */
public final class SnapshotStore {
  private static final Logger LOG = LoggerFactory.getLogger(SnapshotStore.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  public static final String MARKER = "_COMMITTED";
  public static final String TENSORS = "state.safetensors";
  public static final String STATE = "state.json";

  private static final String WEIGHT = "weight/";
  private static final String SCORE = "score/";
  private static final String MASK = "mask/";
  private static final String EXP_AVG = "exp_avg/";
  private static final String EXP_AVG_SQ = "exp_avg_sq/";

  private final Storage storage;
  private final Path root;

  public SnapshotStore(Storage storage, Path root) {
    this.storage = storage;
    this.root = root;
  }

  /** A committed snapshot. */
  public record Snapshot(long step, Path dir, Map<String, Object> state) {
    public int epoch() {
      return ((Number) state.get("epoch")).intValue();
    }
  }

  public Path root() {
    return root;
  }

  /**
   * Writes the state at its current step. A committed snapshot of the same step is kept as it is (a
   * resumed run passes the point where it was taken); a half-written one is replaced.
   *
   * @param extra more entries for state.json (configuration, metrics, seeds)
   */
  public Path write(TrainingState state, int epoch, Map<String, Object> extra) {
    Path dir = new Path(root, Long.toString(state.step()));
    Path marker = new Path(dir, MARKER);
    if (storage.exists(marker)) {
      LOG.info("snapshot {} already committed; kept", dir);
      return dir;
    }
    if (storage.exists(dir)) {
      LOG.warn(
          "snapshot {} has no {} marker (an interrupted write); writing it again", dir, MARKER);
      storage.delete(dir);
    }
    LinkedHashMap<String, HostTensor> tensors = new LinkedHashMap<>();
    state.weights().forEach((k, v) -> tensors.put(WEIGHT + k, v));
    state.scores().forEach((k, v) -> tensors.put(SCORE + k, v));
    state.masks().forEach((k, v) -> tensors.put(MASK + k, v));
    state.expAvg().forEach((k, v) -> tensors.put(EXP_AVG + k, v));
    state.expAvgSq().forEach((k, v) -> tensors.put(EXP_AVG_SQ + k, v));

    Map<String, Object> json = new LinkedHashMap<>();
    json.put("step", state.step());
    json.put("epoch", epoch);
    json.put("frozen", new ArrayList<>(state.frozen()));
    json.put("sparsity", state.sparsity().sparsity());
    json.put("written", java.time.Instant.now().toString());
    json.putAll(extra);

    Map<String, Object> files = new LinkedHashMap<>();
    files.put(
        TENSORS,
        writeHashed(
            new Path(dir, TENSORS),
            out ->
                Safetensors.write(
                    out, tensors, Map.of("format", "cap-prune-snapshot"), Safetensors.Dtype.F32)));
    files.put(
        STATE, writeHashed(new Path(dir, STATE), out -> out.write(JsonFiles.prettyBytes(json))));
    Map<String, Object> committed = new LinkedHashMap<>();
    committed.put("files", files);
    storage.writeBytes(marker, JsonFiles.prettyBytes(committed), false);
    LOG.info("snapshot committed: {} (step {}, epoch {})", dir, state.step(), epoch);
    return dir;
  }

  /** Committed snapshots, oldest first; directories without a marker are skipped with a warning. */
  public List<Snapshot> committed() {
    List<Snapshot> out = new ArrayList<>();
    for (FileStatus s : storage.list(root)) {
      if (!s.isDirectory()) {
        continue;
      }
      long step;
      try {
        step = Long.parseLong(s.getPath().getName());
      } catch (NumberFormatException e) {
        continue;
      }
      if (!storage.exists(new Path(s.getPath(), MARKER))) {
        LOG.warn(
            "snapshot {} has no {} marker (interrupted while writing): skipped",
            s.getPath(),
            MARKER);
        continue;
      }
      String incomplete = incompleteMarker(s.getPath());
      if (incomplete != null) {
        LOG.warn(
            "snapshot {}: {} (interrupted while committing): skipped", s.getPath(), incomplete);
        continue;
      }
      out.add(new Snapshot(step, s.getPath(), readState(s.getPath())));
    }
    out.sort(java.util.Comparator.comparingLong(Snapshot::step));
    return out;
  }

  /**
   * Why the marker of {@code dir} does not commit it, or null if it does. On HDFS a file is visible
   * from the moment it is created, so a driver killed while writing the marker leaves an empty or
   * cut-off one: only a marker that parses and lists files of the sizes present counts.
   */
  private String incompleteMarker(Path dir) {
    Path marker = new Path(dir, MARKER);
    Map<String, Object> files;
    try {
      Object parsed = JSON.readValue(storage.readString(marker), Map.class).get("files");
      if (!(parsed instanceof Map<?, ?> m) || m.isEmpty()) {
        return MARKER + " lists no files";
      }
      @SuppressWarnings("unchecked")
      Map<String, Object> typed = (Map<String, Object>) m;
      files = typed;
    } catch (IOException | RuntimeException e) {
      return MARKER + " is not readable JSON (" + e.getMessage() + ")";
    }
    for (Map.Entry<String, Object> f : files.entrySet()) {
      Path file = new Path(dir, f.getKey());
      Object bytes = f.getValue() instanceof Map<?, ?> info ? info.get("bytes") : null;
      try {
        long length = storage.fs(file).getFileStatus(file).getLen();
        if (!(bytes instanceof Number n) || n.longValue() != length) {
          return f.getKey() + " has " + length + " bytes, " + MARKER + " says " + bytes;
        }
      } catch (IOException e) {
        return f.getKey() + " listed in " + MARKER + " is missing (" + e.getMessage() + ")";
      }
    }
    return null;
  }

  public Optional<Snapshot> latest() {
    List<Snapshot> all = committed();
    return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
  }

  /** The full training state of a snapshot. */
  public TrainingState read(Snapshot snapshot) {
    LinkedHashMap<String, HostTensor> all = readTensors(snapshot, null);
    LinkedHashMap<String, HostTensor> weights = group(all, WEIGHT);
    @SuppressWarnings("unchecked")
    Set<String> frozen = new LinkedHashSet<>((List<String>) snapshot.state().get("frozen"));
    return new TrainingState(
        weights,
        frozen,
        group(all, SCORE),
        group(all, MASK),
        group(all, EXP_AVG),
        group(all, EXP_AVG_SQ),
        snapshot.step());
  }

  /** The weights the forward pass used at the snapshot, W * M (for rebuilding its SnC slice). */
  public LinkedHashMap<String, HostTensor> effectiveWeights(Snapshot snapshot) {
    LinkedHashMap<String, HostTensor> all =
        readTensors(snapshot, n -> n.startsWith(WEIGHT) || n.startsWith(MASK));
    LinkedHashMap<String, HostTensor> weights = group(all, WEIGHT);
    LinkedHashMap<String, HostTensor> masks = group(all, MASK);
    masks.forEach(
        (name, m) -> {
          float[] w = weights.get(name).data();
          float[] md = m.data();
          for (int i = 0; i < w.length; i++) {
            w[i] *= md[i];
          }
        });
    return weights;
  }

  private LinkedHashMap<String, HostTensor> readTensors(
      Snapshot snapshot, java.util.function.Predicate<String> include) {
    Path file = new Path(snapshot.dir(), TENSORS);
    try (InputStream in = storage.open(file)) {
      long length = storage.fs(file).getFileStatus(file).getLen();
      return include == null
          ? Safetensors.read(in, length, file.toString()).tensors()
          : Safetensors.read(in, length, file.toString(), include).tensors();
    } catch (IOException e) {
      throw new Storage.StorageException("cannot read snapshot " + file + ": " + e.getMessage(), e);
    }
  }

  private Map<String, Object> readState(Path dir) {
    Path file = new Path(dir, STATE);
    try {
      @SuppressWarnings("unchecked")
      Map<String, Object> m = JSON.readValue(storage.readString(file), Map.class);
      return m;
    } catch (IOException e) {
      throw new IllegalStateException(
          file + ": not a readable snapshot state: " + e.getMessage(), e);
    }
  }

  private static LinkedHashMap<String, HostTensor> group(
      Map<String, HostTensor> all, String prefix) {
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    all.forEach(
        (k, v) -> {
          if (k.startsWith(prefix)) {
            out.put(k.substring(prefix.length()), v);
          }
        });
    return out;
  }

  private interface Writer {
    void write(OutputStream out) throws IOException;
  }

  private Map<String, Object> writeHashed(Path file, Writer writer) {
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    CountingStream counter;
    try (OutputStream raw = storage.create(file, false);
        DigestOutputStream digest = new DigestOutputStream(raw, sha);
        CountingStream c = new CountingStream(new java.io.BufferedOutputStream(digest, 1 << 20))) {
      counter = c;
      writer.write(c);
    } catch (IOException e) {
      throw new Storage.StorageException("cannot write " + file + ": " + e.getMessage(), e);
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("bytes", counter.count);
    m.put("sha256", HexFormat.of().formatHex(sha.digest()));
    return m;
  }

  private static final class CountingStream extends java.io.FilterOutputStream {
    long count;

    CountingStream(OutputStream out) {
      super(out);
    }

    @Override
    public void write(int b) throws IOException {
      out.write(b);
      count++;
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      out.write(b, off, len);
      count += len;
    }
  }
}
