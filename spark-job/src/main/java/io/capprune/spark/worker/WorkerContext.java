package io.capprune.spark.worker;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.capprune.core.bert.DjlRuntime;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.tensor.NDArrays;
import java.util.Map;

/**
 * What an executor keeps between tasks: the NDManager of its device and the frozen parameters
 * (embeddings during unstructured pruning), converted to native arrays once per broadcast rather
 * than once per step. Only touched under {@link WorkerRuntime#exclusive}.
 */
final class WorkerContext {
  private static WorkerContext current;

  private final Device device;
  private final NDManager manager;
  private Object frozenKey;
  private NDManager frozenManager;
  private Map<String, NDArray> frozen = Map.of();

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

  /**
   * The native copies of a frozen-parameter broadcast, converted on first use. Broadcast ids
   * restart with every SparkContext, so the key includes the Spark environment as well.
   */
  Map<String, NDArray> frozen(long broadcastId, Map<String, HostTensor> values) {
    Object key = java.util.List.of(System.identityHashCode(org.apache.spark.SparkEnv.get()), broadcastId);
    if (!key.equals(frozenKey)) {
      if (frozenManager != null) {
        frozenManager.close();
      }
      frozenManager = manager.newSubManager();
      frozen = NDArrays.toNDArrays(frozenManager, values, DataType.FLOAT32);
      frozenKey = key;
    }
    return frozen;
  }

  private void close() {
    manager.close();
  }
}
