package io.capprune.core.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import io.capprune.core.bert.BertInit;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.testing.TestModels;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * How a training state travels when an executor keeps it: a copy shares nothing with its source,
 * Java serialisation writes the device's current values, and overwrite takes a state back in place
 * (refusing one of another model, naming the tensor).
 */
class TrainingStateCopyTest {
  private static final PruningConfig PRUNING =
      PruningConfig.of(PruningCriterion.MOVEMENT, new SparsitySchedule(1, 0, 0, 10, 1.0, 0.5), 0);
  private static final OptimizerConfig OPTIMIZER = OptimizerConfig.unstructuredDefaults(0, 10);

  private static TrainingState fresh(DeviceDriverUpdate update) {
    return update.initialState(new LinkedHashMap<>(BertInit.init(TestModels.dropoutFreePair(), 5)));
  }

  /** A gradient of ones over every trainable tensor, so a step changes every value. */
  private static Map<String, HostTensor> ones(TrainingState state) {
    Map<String, HostTensor> g = new LinkedHashMap<>();
    state
        .weights()
        .forEach(
            (name, w) -> {
              if (state.isTrainable(name)) {
                HostTensor t = HostTensor.zeros(w.shape());
                java.util.Arrays.fill(t.data(), 1f);
                g.put(name, t);
              }
            });
    return g;
  }

  @Test
  void aCopySharesNothingAndSerialisationWritesTheDevicesValues() throws Exception {
    try (DeviceDriverUpdate update = new DeviceDriverUpdate(PRUNING, OPTIMIZER, Device.cpu())) {
      TrainingState state = fresh(update);
      TrainingState before = state.copy();
      update.apply(state, ones(state)); // the state is on the device now, its host tensors stale
      assertTrue(state.onDevice());
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
        out.writeObject(state);
      }
      TrainingState read;
      try (ObjectInputStream in =
          new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
        read = (TrainingState) in.readObject();
      }
      assertFalse(read.onDevice());
      assertEquals(1, read.step());
      assertEquals(0, before.step());
      String name = state.masks().keySet().iterator().next();
      assertArrayEquals(state.weights().get(name).data(), read.weights().get(name).data());
      assertArrayEquals(state.scores().get(name).data(), read.scores().get(name).data());
      assertFalse(
          java.util.Arrays.equals(
              before.weights().get(name).data(), state.weights().get(name).data()),
          "the step moved the weights, so the copy made before it kept the old values");
      TrainingState copy = state.copy();
      assertNotSame(copy.weights().get(name).data(), state.weights().get(name).data());
      copy.weights().get(name).data()[0] += 1f;
      assertFalse(copy.weights().get(name).data()[0] == state.weights().get(name).data()[0]);
    }
  }

  @Test
  void overwriteTakesAStateBackInPlaceAndRefusesAnotherModel() {
    try (DeviceDriverUpdate update = new DeviceDriverUpdate(PRUNING, OPTIMIZER, Device.cpu())) {
      TrainingState mine = fresh(update);
      TrainingState trained = mine.copy();
      update.apply(trained, ones(trained));
      HostTensor held = mine.weights().values().iterator().next();
      mine.overwrite(trained);
      assertEquals(1, mine.step());
      assertTrue(held == mine.weights().values().iterator().next(), "the same host tensors");
      for (String name : trained.weights().keySet()) {
        assertArrayEquals(trained.weights().get(name).data(), mine.weights().get(name).data());
      }
      for (String name : trained.masks().keySet()) {
        assertArrayEquals(trained.masks().get(name).data(), mine.masks().get(name).data());
        assertArrayEquals(trained.expAvg().get(name).data(), mine.expAvg().get(name).data());
      }
      TrainingState other =
          update.initialState(
              new LinkedHashMap<>(BertInit.init(TestModels.dropoutFree(1, 2, 32), 5)));
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> mine.overwrite(other));
      assertTrue(e.getMessage().startsWith("training state:"), e.getMessage());
    }
  }
}
