package io.capprune.spark.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;

/**
 * The output directory of one run and its guard. {@code run.json} names the run (task, method,
 * model, data); a directory that holds another run, or files the job did not write, is refused
 * unless the user says {@code --overwrite}. Nothing is deleted or replaced before that check.
 */
public final class RunDirectory {
  public static final String RUN_FILE = "run.json";
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Storage storage;
  private final Path root;

  private RunDirectory(Storage storage, Path root) {
    this.storage = storage;
    this.root = root;
  }

  /**
   * Opens (creating if needed) the output directory for a run identified by {@code identity}.
   *
   * @param overwrite delete whatever the directory holds first
   * @throws OutputDirectoryException when the directory holds another run and overwrite is false
   */
  public static RunDirectory open(
      Storage storage, String location, Map<String, String> identity, boolean overwrite) {
    if (location == null || location.isBlank()) {
      throw new OutputDirectoryException("cap.output: no output directory given");
    }
    Path root = Storage.path(location);
    RunDirectory dir = new RunDirectory(storage, root);
    FileStatus[] existing = storage.list(root);
    if (existing.length > 0) {
      Path runFile = new Path(root, RUN_FILE);
      Map<String, String> previous = storage.exists(runFile) ? dir.readIdentity(runFile) : null;
      boolean sameRun = identity.equals(previous);
      if (!sameRun && !overwrite) {
        String what =
            previous == null
                ? "files that are not a cap-prune run ("
                    + existing[0].getPath().getName()
                    + ", ...)"
                : "another run " + previous;
        throw new OutputDirectoryException(
            "output directory "
                + root
                + " already holds "
                + what
                + "; choose another cap.output, or pass --overwrite to replace it");
      }
      if (overwrite) {
        for (FileStatus s : existing) {
          storage.delete(s.getPath());
        }
      } else {
        return dir;
      }
    }
    dir.writeIdentity(identity);
    return dir;
  }

  public Path root() {
    return root;
  }

  public Path resolve(String relative) {
    return new Path(root, relative);
  }

  public Storage storage() {
    return storage;
  }

  private Map<String, String> readIdentity(Path runFile) {
    try {
      @SuppressWarnings("unchecked")
      Map<String, Object> m = JSON.readValue(storage.readString(runFile), Map.class);
      Map<String, String> out = new LinkedHashMap<>();
      Object id = m.get("identity");
      if (id instanceof Map<?, ?> idMap) {
        idMap.forEach((k, v) -> out.put(String.valueOf(k), String.valueOf(v)));
      }
      return out;
    } catch (IOException e) {
      throw new OutputDirectoryException(runFile + ": not a readable run file: " + e.getMessage());
    }
  }

  private void writeIdentity(Map<String, String> identity) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("identity", identity);
    m.put("created", java.time.Instant.now().toString());
    storage.writeString(resolve(RUN_FILE), JsonFiles.pretty(m), false);
  }

  /** The output directory cannot be used for this run. */
  public static final class OutputDirectoryException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public OutputDirectoryException(String message) {
      super(message);
    }
  }
}
