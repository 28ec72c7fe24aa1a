package io.capprune.spark.worker;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.bank.DeviceBank;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.exchange.DeviceWeights;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.prune.DeviceDriverUpdate;
import io.capprune.core.prune.PruningConfig;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import io.capprune.spark.data.Shard;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * What an executor keeps on its device between tasks: the NDManager of the device, the frozen
 * parameters (embeddings during unstructured pruning), converted once per broadcast rather than
 * once per step, the weight exchange's resident state ({@link DeviceWeights}: the keep pattern of
 * the current masks, the upload buffer) and each shard's bank ({@link DeviceBank}, uploaded once
 * per bank version, i.e. once per epoch with SnC) and, when the update runs on the executor, the
 * training state ({@link ResidentTraining}). Only touched under {@link WorkerRuntime#exclusive}.
 */
final class WorkerContext {
  private static WorkerContext current;

  private final Device device;
  private final NDManager manager;
  private Object frozenKey;
  private NDManager frozenManager;
  private Map<String, NDArray> frozen = Map.of();
  private DeviceWeights weights;
  private final Map<Integer, DeviceBank> banks = new HashMap<>();
  private ResidentTraining resident;

  private WorkerContext(Device device, int threads) {
    DjlRuntime.configureOffline();
    DjlRuntime.start(threads);
    this.device = device;
    this.manager = NDManager.newBaseManager(device);
  }

  static WorkerContext on(Device device, int threads) {
    if (current == null || !current.device.equals(device)) {
      if (current != null) {
        current.close();
      }
      current = new WorkerContext(device, threads);
    }
    return current;
  }

  NDManager manager() {
    return manager;
  }

  /** The weight exchange's state on this device. */
  DeviceWeights weights() {
    if (weights == null) {
      weights = DeviceWeights.on(manager);
    }
    return weights;
  }

  /**
   * The shard's bank on this device, uploaded when the shard's bank changed (a new snapshot slice).
   * Checks once per upload that the shard's labels are the bank's, which the supervised contrastive
   * terms rely on.
   */
  DeviceBank bank(Shard shard) {
    DeviceBank b = banks.get(shard.partition());
    if (b != null && b.holds(shard.bank())) {
      return b;
    }
    if (b != null) {
      b.close();
    }
    shard.checkBankLabels();
    b = DeviceBank.upload(manager, shard.bank());
    banks.put(shard.partition(), b);
    return b;
  }

  /**
   * The native copies of a frozen-parameter broadcast, converted on first use. Broadcast ids
   * restart with every SparkContext, so the key includes the Spark environment as well.
   */
  Map<String, NDArray> frozen(long broadcastId, Map<String, HostTensor> values) {
    Object key =
        java.util.List.of(System.identityHashCode(org.apache.spark.SparkEnv.get()), broadcastId);
    if (!key.equals(frozenKey)) {
      if (frozenManager != null) {
        frozenManager.close();
      }
      frozenManager = manager.newSubManager();
      frozen = NDArrays.toNDArrays(frozenManager, values, DataType.FLOAT32);
      frozenKey = key;
      // a new stage (new SparkContext or new broadcast): banks of earlier shards are stale
      banks.values().forEach(DeviceBank::close);
      banks.clear();
    }
    return frozen;
  }

  /**
   * The training state this executor keeps for the publication {@code key}: the one it holds, or,
   * when it holds another (or none), a copy of {@code published} with an update on this device.
   */
  ResidentTraining resident(
      Object key,
      PruningConfig pruning,
      OptimizerConfig optimizer,
      Supplier<TrainingState> published) {
    if (resident != null && resident.key.equals(key)) {
      return resident;
    }
    dropResident();
    TrainingState state = published.get().copy();
    resident = new ResidentTraining(key, new DeviceDriverUpdate(pruning, optimizer, device), state);
    return resident;
  }

  /** The training state kept for {@code key}, or null when this executor keeps none for it. */
  ResidentTraining residentOrNull(Object key) {
    return resident != null && resident.key.equals(key) ? resident : null;
  }

  private void dropResident() {
    if (resident != null) {
      resident.close();
      resident = null;
    }
  }

  private void close() {
    dropResident();
    manager.close();
  }
}
