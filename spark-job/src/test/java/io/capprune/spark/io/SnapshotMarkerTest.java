package io.capprune.spark.io;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.HostTensor;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A marker that exists but is empty or cut off (HDFS shows files while they are written) does not
 * commit.
 */
class SnapshotMarkerTest {

  @TempDir java.nio.file.Path dir;

  private static TrainingState state(long step) {
    LinkedHashMap<String, HostTensor> w = new LinkedHashMap<>();
    w.put("classifier.weight", new HostTensor(new int[] {2, 2}, new float[] {1, 2, 3, 4}));
    LinkedHashMap<String, HostTensor> zeros = new LinkedHashMap<>();
    zeros.put("classifier.weight", HostTensor.zeros(2, 2));
    return new TrainingState(
        w,
        new LinkedHashSet<>(),
        new LinkedHashMap<>(),
        new LinkedHashMap<>(),
        zeros,
        new LinkedHashMap<>(zeros),
        step);
  }

  @Test
  void emptyCutOffOrMismatchedMarkersDoNotCommit() throws Exception {
    Storage storage = new Storage(new Configuration());
    SnapshotStore store = new SnapshotStore(storage, new Path(dir.toUri()));
    for (long step : List.of(10L, 20L, 30L, 40L)) {
      store.write(state(step), (int) step / 10, Map.of());
    }
    java.nio.file.Path m20 = dir.resolve("20/_COMMITTED");
    java.nio.file.Path m30 = dir.resolve("30/_COMMITTED");
    Files.write(m20, new byte[0]);
    String full = Files.readString(m30);
    Files.writeString(m30, full.substring(0, full.length() / 2));
    Files.writeString(dir.resolve("40/state.json"), "{}");

    assertEquals(
        List.of(10L), store.committed().stream().map(SnapshotStore.Snapshot::step).toList());
  }
}
